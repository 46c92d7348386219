//! Structured triangular mesh of the unit square.
//!
//! `n × n` square cells, each split into two triangles by the diagonal from `(x_i, y_j)` to
//! `(x_{i+1}, y_{j+1})`. Vertex `(i/n, j/n)` has index `k = j (n + 1) + i`: this is the public
//! ordering of every nodal field dino reads or writes (x fastest).

/// A side of the unit square.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// x = 0
    Left,
    /// x = 1
    Right,
    /// y = 0
    Bottom,
    /// y = 1
    Top,
}

impl Side {
    /// All four sides.
    pub const ALL: [Side; 4] = [Side::Left, Side::Right, Side::Bottom, Side::Top];

    /// The name used in problem files.
    pub fn name(self) -> &'static str {
        match self {
            Side::Left => "left",
            Side::Right => "right",
            Side::Bottom => "bottom",
            Side::Top => "top",
        }
    }
}

/// Geometry of one P1 triangle: area and the (constant) gradients of its barycentric
/// coordinates λ_0, λ_1, λ_2.
#[derive(Debug, Clone, Copy)]
pub struct TriangleGeometry {
    /// |T|
    pub area: f64,
    /// ∇λ_a for a = 0, 1, 2.
    pub grad: [[f64; 2]; 3],
}

impl TriangleGeometry {
    fn new(p: [[f64; 2]; 3]) -> Self {
        let det =
            (p[1][0] - p[0][0]) * (p[2][1] - p[0][1]) - (p[2][0] - p[0][0]) * (p[1][1] - p[0][1]);
        let grad = [
            [(p[1][1] - p[2][1]) / det, (p[2][0] - p[1][0]) / det],
            [(p[2][1] - p[0][1]) / det, (p[0][0] - p[2][0]) / det],
            [(p[0][1] - p[1][1]) / det, (p[1][0] - p[0][0]) / det],
        ];
        TriangleGeometry {
            area: 0.5 * det.abs(),
            grad,
        }
    }

    /// ∇λ_a · ∇λ_b: the P1 stiffness of the triangle divided by its area.
    pub fn gradient_products(&self) -> [[f64; 3]; 3] {
        let mut d = [[0.0; 3]; 3];
        for a in 0..3 {
            for b in 0..3 {
                d[a][b] = self.grad[a][0] * self.grad[b][0] + self.grad[a][1] * self.grad[b][1];
            }
        }
        d
    }
}

/// The mesh: vertices, counter-clockwise triangles and their geometry.
#[derive(Debug, Clone)]
pub struct Mesh {
    n: usize,
    vertices: Vec<[f64; 2]>,
    triangles: Vec<[usize; 3]>,
    geometry: Vec<TriangleGeometry>,
}

impl Mesh {
    /// The `n × n` mesh of the unit square (`n ≥ 1`).
    pub fn unit_square(n: usize) -> Self {
        assert!(n >= 1, "a mesh needs at least one cell per side");
        let h = 1.0 / n as f64;
        let mut vertices = Vec::with_capacity((n + 1) * (n + 1));
        for j in 0..=n {
            for i in 0..=n {
                vertices.push([i as f64 * h, j as f64 * h]);
            }
        }
        let mut triangles = Vec::with_capacity(2 * n * n);
        for j in 0..n {
            for i in 0..n {
                let v00 = j * (n + 1) + i;
                let v10 = v00 + 1;
                let v01 = v00 + n + 1;
                let v11 = v01 + 1;
                triangles.push([v00, v10, v11]);
                triangles.push([v00, v11, v01]);
            }
        }
        let geometry = triangles
            .iter()
            .map(|t| TriangleGeometry::new([vertices[t[0]], vertices[t[1]], vertices[t[2]]]))
            .collect();
        Mesh {
            n,
            vertices,
            triangles,
            geometry,
        }
    }

    /// Cells per side.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of vertices, (n + 1)²: the dimension of a P1 field.
    pub fn num_vertices(&self) -> usize {
        self.vertices.len()
    }

    /// Number of triangles, 2 n².
    pub fn num_triangles(&self) -> usize {
        self.triangles.len()
    }

    /// Vertex coordinates in the public ordering.
    pub fn vertices(&self) -> &[[f64; 2]] {
        &self.vertices
    }

    /// Triangles as vertex triples, counter-clockwise.
    pub fn triangles(&self) -> &[[usize; 3]] {
        &self.triangles
    }

    /// Area and barycentric gradients of each triangle.
    pub fn geometry(&self) -> &[TriangleGeometry] {
        &self.geometry
    }

    /// Vertices on `side`, ordered along the side.
    pub fn side_vertices(&self, side: Side) -> Vec<usize> {
        let n = self.n;
        (0..=n)
            .map(|t| match side {
                Side::Left => t * (n + 1),
                Side::Right => t * (n + 1) + n,
                Side::Bottom => t,
                Side::Top => n * (n + 1) + t,
            })
            .collect()
    }

    /// Boundary edges on `side` as vertex pairs.
    pub fn side_edges(&self, side: Side) -> Vec<[usize; 2]> {
        self.side_vertices(side)
            .windows(2)
            .map(|w| [w[0], w[1]])
            .collect()
    }

    /// Length of the edge between vertices `a` and `b`.
    pub fn edge_length(&self, a: usize, b: usize) -> f64 {
        let (p, q) = (self.vertices[a], self.vertices[b]);
        ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt()
    }

    /// The triangle containing `(x, y)` and the point's barycentric coordinates in it,
    /// or `None` when the point lies outside the closed unit square.
    pub fn locate(&self, x: f64, y: f64) -> Option<(usize, [f64; 3])> {
        const TOL: f64 = 1e-12;
        let inside = |c: f64| (-TOL..=1.0 + TOL).contains(&c);
        if !(inside(x) && inside(y)) {
            return None;
        }
        let n = self.n;
        let (sx, sy) = (x.clamp(0.0, 1.0) * n as f64, y.clamp(0.0, 1.0) * n as f64);
        let i = (sx.floor() as usize).min(n - 1);
        let j = (sy.floor() as usize).min(n - 1);
        let (s, t) = (sx - i as f64, sy - j as f64);
        let cell = 2 * (j * n + i);
        if s >= t {
            // lower-right triangle [v00, v10, v11]
            Some((cell, [1.0 - s, s - t, t]))
        } else {
            // upper-left triangle [v00, v11, v01]
            Some((cell + 1, [1.0 - t, s, t - s]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_total_area() {
        let mesh = Mesh::unit_square(4);
        assert_eq!(mesh.num_vertices(), 25);
        assert_eq!(mesh.num_triangles(), 32);
        let area: f64 = mesh.geometry().iter().map(|g| g.area).sum();
        assert!((area - 1.0).abs() < 1e-14);
    }

    #[test]
    fn barycentric_gradients_sum_to_zero() {
        let mesh = Mesh::unit_square(3);
        for g in mesh.geometry() {
            for c in 0..2 {
                assert!((g.grad[0][c] + g.grad[1][c] + g.grad[2][c]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn locate_reproduces_the_point() {
        let mesh = Mesh::unit_square(7);
        for &(x, y) in &[
            (0.1, 0.2),
            (0.5, 0.5),
            (0.93, 0.01),
            (1.0, 1.0),
            (0.0, 0.0),
            (0.3, 0.9),
        ] {
            let (cell, lam) = mesh.locate(x, y).unwrap();
            let tri = mesh.triangles()[cell];
            let px: f64 = (0..3).map(|a| lam[a] * mesh.vertices()[tri[a]][0]).sum();
            let py: f64 = (0..3).map(|a| lam[a] * mesh.vertices()[tri[a]][1]).sum();
            assert!((px - x).abs() < 1e-12 && (py - y).abs() < 1e-12);
            assert!(lam.iter().all(|&l| l >= -1e-12));
        }
        assert!(mesh.locate(1.1, 0.5).is_none());
        assert!(mesh.locate(0.5, -0.01).is_none());
    }

    #[test]
    fn vertex_ordering_is_x_fastest() {
        let mesh = Mesh::unit_square(4);
        assert_eq!(mesh.vertices()[1], [0.25, 0.0]);
        assert_eq!(mesh.vertices()[5], [0.0, 0.25]);
        assert_eq!(mesh.side_vertices(Side::Top)[0], 20);
    }
}
