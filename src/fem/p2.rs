//! Continuous piecewise-quadratic (P2) elements on the triangle mesh: the velocity space of the
//! Taylor–Hood pair. Nodes are the mesh vertices (same indices as P1) followed by edge midpoints.
//! Local node order on a triangle: vertices 0, 1, 2, then midpoints of edges (0,1), (1,2), (2,0).
//! Basis in barycentric coordinates: φ_a = λ_a (2λ_a − 1), φ_{ab} = 4 λ_a λ_b.

use std::collections::HashMap;

use super::mesh::Mesh;

/// The P2 node numbering of a mesh.
#[derive(Debug, Clone)]
pub struct P2Space {
    coords: Vec<[f64; 2]>,
    triangle_nodes: Vec<[usize; 6]>,
}

impl P2Space {
    /// P2 nodes of `mesh`.
    pub fn new(mesh: &Mesh) -> Self {
        let mut coords = mesh.vertices().to_vec();
        let mut edge_node: HashMap<(usize, usize), usize> = HashMap::new();
        let triangle_nodes = mesh
            .triangles()
            .iter()
            .map(|t| {
                let mut nodes = [t[0], t[1], t[2], 0, 0, 0];
                for (k, (a, b)) in [(t[0], t[1]), (t[1], t[2]), (t[2], t[0])]
                    .into_iter()
                    .enumerate()
                {
                    let key = (a.min(b), a.max(b));
                    nodes[3 + k] = *edge_node.entry(key).or_insert_with(|| {
                        let (p, q) = (coords[a], coords[b]);
                        coords.push([0.5 * (p[0] + q[0]), 0.5 * (p[1] + q[1])]);
                        coords.len() - 1
                    });
                }
                nodes
            })
            .collect();
        P2Space {
            coords,
            triangle_nodes,
        }
    }

    /// Number of P2 nodes.
    pub fn num_nodes(&self) -> usize {
        self.coords.len()
    }

    /// Node coordinates.
    pub fn coords(&self) -> &[[f64; 2]] {
        &self.coords
    }

    /// The six nodes of triangle `t`.
    pub fn triangle_nodes(&self, t: usize) -> [usize; 6] {
        self.triangle_nodes[t]
    }

    /// Nodes on the boundary of the unit square.
    pub fn boundary_nodes(&self) -> Vec<usize> {
        const TOL: f64 = 1e-12;
        let on = |c: f64| !(TOL..=1.0 - TOL).contains(&c);
        (0..self.coords.len())
            .filter(|&k| on(self.coords[k][0]) || on(self.coords[k][1]))
            .collect()
    }

    /// The six basis functions at barycentric point `l`.
    pub fn basis(l: [f64; 3]) -> [f64; 6] {
        [
            l[0] * (2.0 * l[0] - 1.0),
            l[1] * (2.0 * l[1] - 1.0),
            l[2] * (2.0 * l[2] - 1.0),
            4.0 * l[0] * l[1],
            4.0 * l[1] * l[2],
            4.0 * l[2] * l[0],
        ]
    }

    /// Gradients of the six basis functions at `l`, given the barycentric gradients ∇λ.
    pub fn basis_gradients(l: [f64; 3], gl: &[[f64; 2]; 3]) -> [[f64; 2]; 6] {
        let lin = |c: [(usize, f64); 2]| {
            [
                c[0].1 * gl[c[0].0][0] + c[1].1 * gl[c[1].0][0],
                c[0].1 * gl[c[0].0][1] + c[1].1 * gl[c[1].0][1],
            ]
        };
        [
            lin([(0, 4.0 * l[0] - 1.0), (0, 0.0)]),
            lin([(1, 4.0 * l[1] - 1.0), (1, 0.0)]),
            lin([(2, 4.0 * l[2] - 1.0), (2, 0.0)]),
            lin([(0, 4.0 * l[1]), (1, 4.0 * l[0])]),
            lin([(1, 4.0 * l[2]), (2, 4.0 * l[1])]),
            lin([(2, 4.0 * l[0]), (0, 4.0 * l[2])]),
        ]
    }

    /// The P2 field with nodal `values` at (x, y), or `None` outside the mesh.
    pub fn evaluate(&self, mesh: &Mesh, values: &[f64], x: f64, y: f64) -> Option<f64> {
        let (t, l) = mesh.locate(x, y)?;
        let phi = Self::basis(l);
        Some(
            self.triangle_nodes[t]
                .iter()
                .zip(phi)
                .map(|(&k, p)| p * values[k])
                .sum(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_exact_quadratics() {
        let mesh = Mesh::unit_square(4);
        let space = P2Space::new(&mesh);
        assert_eq!(space.num_nodes(), 9 * 9);
        assert_eq!(space.boundary_nodes().len(), 4 * 8);
        // P2 reproduces quadratics exactly, values and gradients
        let f = |p: [f64; 2]| {
            1.0 + p[0] - 2.0 * p[1] + 3.0 * p[0] * p[1] - p[0] * p[0] + 0.5 * p[1] * p[1]
        };
        let values: Vec<f64> = space.coords().iter().map(|&p| f(p)).collect();
        for &(x, y) in &[(0.13, 0.77), (0.5, 0.25), (0.9, 0.05)] {
            assert!((space.evaluate(&mesh, &values, x, y).unwrap() - f([x, y])).abs() < 1e-12);
            let (t, l) = mesh.locate(x, y).unwrap();
            let g = P2Space::basis_gradients(l, &mesh.geometry()[t].grad);
            let nodes = space.triangle_nodes(t);
            let gx: f64 = (0..6).map(|a| g[a][0] * values[nodes[a]]).sum();
            let gy: f64 = (0..6).map(|a| g[a][1] * values[nodes[a]]).sum();
            assert!((gx - (1.0 + 3.0 * y - 2.0 * x)).abs() < 1e-11);
            assert!((gy - (-2.0 + 3.0 * x + y)).abs() < 1e-11);
        }
    }
}
