//! Triangle meshes: the structured unit square and any triangulation read from a file.
//!
//! The structured mesh has `n × n` square cells, each split into two triangles by the diagonal from `(x_i, y_j)` to
//! `(x_{i+1}, y_{j+1})`. Vertex `(i/n, j/n)` has index `k = j (n + 1) + i`: this is the public
//! ordering of every nodal field dino reads or writes (x fastest). A mesh read from a file keeps the file's vertex order (ascending Gmsh node
//! tag).

use crate::error::{Error, Result};

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

/// A named part of the boundary: a Gmsh physical curve, or a side of the unit square.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundaryGroup {
    /// The name problem files use (`left`, `inlet`, …).
    pub name: String,
    /// Its edges as vertex pairs, in the order given (along the side for the unit square).
    pub edges: Vec<[usize; 2]>,
}

/// The mesh: vertices, counter-clockwise triangles, their geometry, the named boundary groups
/// and a point locator.
#[derive(Debug, Clone)]
pub struct Mesh {
    vertices: Vec<[f64; 2]>,
    triangles: Vec<[usize; 3]>,
    geometry: Vec<TriangleGeometry>,
    groups: Vec<BoundaryGroup>,
    /// Every edge on the domain's boundary (edges of exactly one triangle): first those of the
    /// groups, in group order, then the rest in triangle order.
    boundary: Vec<[usize; 2]>,
    locator: Locator,
}

/// How [`Mesh::locate`] finds the triangle of a point.
#[derive(Debug, Clone)]
enum Locator {
    /// The structured n × n square: the cell from the coordinates.
    UnitSquare { n: usize },
    /// Any triangulation: a uniform bucket grid over the bounding box.
    Buckets(BucketGrid),
}

impl Mesh {
    /// The `n × n` mesh of the unit square (`n ≥ 1`), with boundary groups
    /// `left`, `right`, `bottom`, `top`.
    pub fn unit_square(n: usize) -> Self {
        assert!(n >= 1, "a mesh needs at least one cell per side");
        let (vertices, triangles) = unit_square_parts(n);
        let geometry = triangles
            .iter()
            .map(|t| TriangleGeometry::new([vertices[t[0]], vertices[t[1]], vertices[t[2]]]))
            .collect();
        let side_vertices = |side: Side| -> Vec<usize> {
            (0..=n)
                .map(|t| match side {
                    Side::Left => t * (n + 1),
                    Side::Right => t * (n + 1) + n,
                    Side::Bottom => t,
                    Side::Top => n * (n + 1) + t,
                })
                .collect()
        };
        let groups: Vec<BoundaryGroup> = Side::ALL
            .iter()
            .map(|&side| BoundaryGroup {
                name: side.name().to_string(),
                edges: side_vertices(side)
                    .windows(2)
                    .map(|w| [w[0], w[1]])
                    .collect(),
            })
            .collect();
        let boundary = groups.iter().flat_map(|g| g.edges.clone()).collect();
        Mesh {
            vertices,
            triangles,
            geometry,
            groups,
            boundary,
            locator: Locator::UnitSquare { n },
        }
    }

    /// A mesh of any triangulation: `vertices`, `triangles` (either orientation; all are made
    /// counter-clockwise) and named boundary `groups`. Errors (`file` names the source): no
    /// triangles, a vertex index out of range, a degenerate triangle (area ≤ 10⁻¹² of the
    /// bounding box's), triangles of both orientations (the minority is "inverted"), a group
    /// edge that is not an edge of the mesh. When the triangulation is exactly the structured
    /// unit square's, the mesh is that mesh (same locator, so results agree to the last bit).
    pub fn from_parts(
        file: &str,
        vertices: Vec<[f64; 2]>,
        mut triangles: Vec<[usize; 3]>,
        groups: Vec<BoundaryGroup>,
    ) -> Result<Self> {
        let bad = |m: String| Error::parse(file, m);
        if triangles.is_empty() {
            return Err(bad("the mesh has no triangles".into()));
        }
        let nv = vertices.len();
        if nv > u32::MAX as usize {
            return Err(bad(format!("{nv} vertices: at most 2³² are supported")));
        }
        if let Some((t, _)) = triangles
            .iter()
            .enumerate()
            .find(|(_, t)| t.iter().any(|&v| v >= nv))
        {
            return Err(bad(format!(
                "triangle {t} names a vertex that does not exist"
            )));
        }
        if let Some(v) = vertices
            .iter()
            .position(|p| !p.iter().all(|c| c.is_finite()))
        {
            return Err(bad(format!("vertex {v} has a non-finite coordinate")));
        }
        let (lo, hi) = bounding_box(&vertices);
        let scale = (hi[0] - lo[0]).max(hi[1] - lo[1]);
        let signed: Vec<f64> = triangles
            .iter()
            .map(|t| signed_area([vertices[t[0]], vertices[t[1]], vertices[t[2]]]))
            .collect();
        if let Some(t) = signed.iter().position(|a| a.abs() <= 1e-12 * scale * scale) {
            let p = triangles[t].map(|v| vertices[v]);
            return Err(bad(format!(
                "triangle {t} is degenerate (area {:.3e}; vertices {p:?})",
                signed[t].abs()
            )));
        }
        let negative = signed.iter().filter(|&&a| a < 0.0).count();
        if negative > 0 && negative < triangles.len() {
            let minority_negative = 2 * negative <= triangles.len();
            let t = signed
                .iter()
                .position(|&a| (a < 0.0) == minority_negative)
                .expect("both orientations occur");
            return Err(bad(format!(
                "triangle {t} is inverted: {negative} of {} triangles are clockwise, the rest \
                 counter-clockwise (a folded or tangled mesh)",
                triangles.len()
            )));
        }
        if negative > 0 {
            for t in &mut triangles {
                t.swap(1, 2);
            }
        }
        let boundary = boundary_edges(&triangles, &groups).map_err(bad)?;
        if let Some(n) = structured_size(&vertices, &triangles) {
            let mut square = Mesh::unit_square(n);
            square.groups = groups;
            square.boundary = boundary;
            return Ok(square);
        }
        let geometry: Vec<TriangleGeometry> = triangles
            .iter()
            .map(|t| TriangleGeometry::new([vertices[t[0]], vertices[t[1]], vertices[t[2]]]))
            .collect();
        let locator = Locator::Buckets(BucketGrid::new(&vertices, &triangles));
        Ok(Mesh {
            vertices,
            triangles,
            geometry,
            groups,
            boundary,
            locator,
        })
    }

    /// Cells per side when this is the structured unit square; `None` for another mesh.
    pub fn structured_size(&self) -> Option<usize> {
        match self.locator {
            Locator::UnitSquare { n } => Some(n),
            Locator::Buckets(_) => None,
        }
    }

    /// Number of vertices: the dimension of a P1 field.
    pub fn num_vertices(&self) -> usize {
        self.vertices.len()
    }

    /// Number of triangles.
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

    /// The named boundary groups.
    pub fn boundary_groups(&self) -> &[BoundaryGroup] {
        &self.groups
    }

    /// The names of the boundary groups, in order.
    pub fn boundary_names(&self) -> Vec<&str> {
        self.groups.iter().map(|g| g.name.as_str()).collect()
    }

    /// The edges of the boundary group `name`, or `None` when the mesh has no such group.
    pub fn group_edges(&self, name: &str) -> Option<&[[usize; 2]]> {
        self.groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.edges.as_slice())
    }

    /// The vertices of the boundary group `name` in the order its edges visit them (along
    /// the side for the unit square), or `None` when the mesh has no such group.
    pub fn group_vertices(&self, name: &str) -> Option<Vec<usize>> {
        self.group_edges(name).map(edge_vertices)
    }

    /// Every edge of the domain's boundary.
    pub fn boundary_edges(&self) -> &[[usize; 2]] {
        &self.boundary
    }

    /// Every vertex on the domain's boundary.
    pub fn boundary_vertices(&self) -> Vec<usize> {
        edge_vertices(&self.boundary)
    }

    /// Vertices on `side` of the unit square, ordered along the side (`None` on a mesh without
    /// that group).
    pub fn side_vertices(&self, side: Side) -> Option<Vec<usize>> {
        self.group_vertices(side.name())
    }

    /// What a point must be to lie in this domain, for error messages.
    pub fn point_expectation(&self) -> &'static str {
        match self.locator {
            Locator::UnitSquare { .. } if self.groups.len() == 4 => {
                "a point in the unit square [0,1]²"
            }
            _ => "a point inside the mesh (not outside it, nor in a hole)",
        }
    }

    /// Length of the edge between vertices `a` and `b`.
    pub fn edge_length(&self, a: usize, b: usize) -> f64 {
        let (p, q) = (self.vertices[a], self.vertices[b]);
        ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt()
    }

    /// The triangle containing `(x, y)` and the point's barycentric coordinates in it, or
    /// `None` when the point lies outside the (closed) domain or in a hole.
    pub fn locate(&self, x: f64, y: f64) -> Option<(usize, [f64; 3])> {
        match &self.locator {
            Locator::UnitSquare { n } => locate_in_square(*n, x, y),
            Locator::Buckets(grid) => grid.locate(self, x, y),
        }
    }
}

/// Vertices and triangles of the structured n × n square (see the module doc).
fn unit_square_parts(n: usize) -> (Vec<[f64; 2]>, Vec<[usize; 3]>) {
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
    (vertices, triangles)
}

/// n when `vertices` and `triangles` are exactly those of the structured n × n square.
fn structured_size(vertices: &[[f64; 2]], triangles: &[[usize; 3]]) -> Option<usize> {
    let n = (vertices.len() as f64).sqrt().round() as usize - 1;
    if n == 0 || (n + 1) * (n + 1) != vertices.len() || triangles.len() != 2 * n * n {
        return None;
    }
    let (v, t) = unit_square_parts(n);
    (v == vertices && t == triangles).then_some(n)
}

fn bounding_box(vertices: &[[f64; 2]]) -> ([f64; 2], [f64; 2]) {
    vertices.iter().fold(
        ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]),
        |(lo, hi), p| {
            (
                [lo[0].min(p[0]), lo[1].min(p[1])],
                [hi[0].max(p[0]), hi[1].max(p[1])],
            )
        },
    )
}

fn signed_area(p: [[f64; 2]; 3]) -> f64 {
    0.5 * ((p[1][0] - p[0][0]) * (p[2][1] - p[0][1]) - (p[2][0] - p[0][0]) * (p[1][1] - p[0][1]))
}

/// The distinct vertices of `edges` in the order they are visited.
fn edge_vertices(edges: &[[usize; 2]]) -> Vec<usize> {
    let mut seen = std::collections::HashSet::new();
    edges
        .iter()
        .flatten()
        .copied()
        .filter(|v| seen.insert(*v))
        .collect()
}

/// The boundary edges (edges of exactly one triangle): those of the groups first, in group
/// order, then the rest in triangle order. A group edge that is no edge of the mesh is an error.
fn boundary_edges(
    triangles: &[[usize; 3]],
    groups: &[BoundaryGroup],
) -> std::result::Result<Vec<[usize; 2]>, String> {
    use rayon::slice::ParallelSliceMut;
    // every triangle edge as one sortable key (min << 32 | max); an edge that occurs once is
    // on the boundary. Sorting (not hashing) keeps 10⁶ triangles well under a second.
    let key = |a: usize, b: usize| ((a.min(b) as u64) << 32) | a.max(b) as u64;
    let mut keys: Vec<u64> = triangles
        .iter()
        .flat_map(|t| [key(t[0], t[1]), key(t[1], t[2]), key(t[2], t[0])])
        .collect();
    keys.par_sort_unstable();
    let mut singles = Vec::new();
    let mut run = 0;
    while run < keys.len() {
        let mut end = run + 1;
        while end < keys.len() && keys[end] == keys[run] {
            end += 1;
        }
        if end - run == 1 {
            singles.push(keys[run]);
        }
        run = end;
    }
    let on_boundary = |k: u64| singles.binary_search(&k).is_ok();
    let mut out = Vec::new();
    let mut taken = std::collections::HashSet::new();
    for g in groups {
        for &[a, b] in &g.edges {
            let k = key(a, b);
            if keys.binary_search(&k).is_err() {
                return Err(format!(
                    "boundary group \"{}\" has an edge ({a}, {b}) that is not an edge of any \
                     triangle",
                    g.name
                ));
            }
            if on_boundary(k) && taken.insert(k) {
                out.push([a, b]);
            }
        }
    }
    for t in triangles {
        for a in 0..3 {
            let (u, v) = (t[a], t[(a + 1) % 3]);
            let k = key(u, v);
            if on_boundary(k) && taken.insert(k) {
                out.push([u, v]);
            }
        }
    }
    Ok(out)
}

fn locate_in_square(n: usize, x: f64, y: f64) -> Option<(usize, [f64; 3])> {
    const TOL: f64 = 1e-12;
    let inside = |c: f64| (-TOL..=1.0 + TOL).contains(&c);
    if !(inside(x) && inside(y)) {
        return None;
    }
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

/// A uniform grid of about one bucket per triangle over the mesh's bounding box; each bucket
/// lists the triangles whose bounding boxes meet it (compressed rows). A query tests the few
/// triangles of one bucket: O(1) per point on a quasi-uniform mesh.
#[derive(Debug, Clone)]
struct BucketGrid {
    origin: [f64; 2],
    cell: [f64; 2],
    shape: [usize; 2],
    starts: Vec<u32>,
    items: Vec<u32>,
    /// Points this far outside a triangle (relative to the bounding box) still count as in it.
    tolerance: f64,
}

impl BucketGrid {
    fn new(vertices: &[[f64; 2]], triangles: &[[usize; 3]]) -> Self {
        let (lo, hi) = bounding_box(vertices);
        let (w, h) = ((hi[0] - lo[0]).max(1e-300), (hi[1] - lo[1]).max(1e-300));
        let t = triangles.len() as f64;
        let nx = ((t * w / h).sqrt().ceil() as usize).clamp(1, 4096);
        let ny = ((t / nx as f64).ceil() as usize).clamp(1, 4096);
        let cell = [w / nx as f64, h / ny as f64];
        let shape = [nx, ny];
        let range = |tri: &[usize; 3], c: usize| {
            let (a, b) = tri
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                    (a.min(vertices[v][c]), b.max(vertices[v][c]))
                });
            let index =
                |x: f64| (((x - lo[c]) / cell[c]).floor().max(0.0) as usize).min(shape[c] - 1);
            index(a)..=index(b)
        };
        let mut counts = vec![0u32; nx * ny + 1];
        for tri in triangles {
            for j in range(tri, 1) {
                for i in range(tri, 0) {
                    counts[j * nx + i + 1] += 1;
                }
            }
        }
        for k in 1..counts.len() {
            counts[k] += counts[k - 1];
        }
        let mut fill = counts.clone();
        let mut items = vec![0u32; counts[nx * ny] as usize];
        for (k, tri) in triangles.iter().enumerate() {
            for j in range(tri, 1) {
                for i in range(tri, 0) {
                    let b = j * nx + i;
                    items[fill[b] as usize] = k as u32;
                    fill[b] += 1;
                }
            }
        }
        BucketGrid {
            origin: lo,
            cell,
            shape,
            starts: counts,
            items,
            tolerance: 1e-10,
        }
    }

    fn locate(&self, mesh: &Mesh, x: f64, y: f64) -> Option<(usize, [f64; 3])> {
        let index = |v: f64, c: usize| {
            let s = (v - self.origin[c]) / self.cell[c];
            let margin = self.tolerance * self.shape[c] as f64;
            if !(s >= -margin && s <= self.shape[c] as f64 + margin) {
                return None;
            }
            Some((s.floor().max(0.0) as usize).min(self.shape[c] - 1))
        };
        let (i, j) = (index(x, 0)?, index(y, 1)?);
        let b = j * self.shape[0] + i;
        let mut best: Option<(usize, [f64; 3], f64)> = None;
        for &t in &self.items[self.starts[b] as usize..self.starts[b + 1] as usize] {
            let t = t as usize;
            let (tri, g) = (mesh.triangles[t], &mesh.geometry[t]);
            let lam: [f64; 3] = std::array::from_fn(|a| {
                let p = mesh.vertices[tri[(a + 1) % 3]];
                g.grad[a][0] * (x - p[0]) + g.grad[a][1] * (y - p[1])
            });
            let worst = lam.iter().copied().fold(f64::INFINITY, f64::min);
            if best.is_none_or(|(_, _, w)| worst > w) {
                best = Some((t, lam, worst));
            }
        }
        best.filter(|&(_, _, w)| w >= -self.tolerance)
            .map(|(t, lam, _)| (t, lam))
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
        assert_eq!(mesh.side_vertices(Side::Top).unwrap()[0], 20);
    }
}
