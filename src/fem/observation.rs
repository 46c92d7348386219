//! Pointwise observation operator B: a nodal P1 field ↦ its values at given points.

use super::mesh::Mesh;

/// The sparse operator B (d_Q × number of vertices): row k interpolates a P1 field at point x_k
/// with the barycentric coordinates of the triangle containing it.
#[derive(Debug, Clone)]
pub struct PointObservation {
    points: Vec<[f64; 2]>,
    rows: Vec<[(usize, f64); 3]>,
}

/// A point that lies outside the mesh.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointOutside {
    /// Position of the point in the list.
    pub index: usize,
    /// The point.
    pub point: [f64; 2],
}

impl PointObservation {
    /// The observation operator for `points` on `mesh`; every point must lie in the closed unit square.
    pub fn new(mesh: &Mesh, points: &[[f64; 2]]) -> Result<Self, PointOutside> {
        let rows = points
            .iter()
            .enumerate()
            .map(|(index, &point)| {
                let (t, lam) = mesh
                    .locate(point[0], point[1])
                    .ok_or(PointOutside { index, point })?;
                let tri = mesh.triangles()[t];
                Ok([(tri[0], lam[0]), (tri[1], lam[1]), (tri[2], lam[2])])
            })
            .collect::<Result<_, _>>()?;
        Ok(PointObservation {
            points: points.to_vec(),
            rows,
        })
    }

    /// Number of observations d_Q.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when there are no observation points.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The observation points.
    pub fn points(&self) -> &[[f64; 2]] {
        &self.points
    }

    /// B u.
    pub fn apply(&self, u: &[f64]) -> Vec<f64> {
        self.rows
            .iter()
            .map(|r| r.iter().map(|&(v, w)| w * u[v]).sum())
            .collect()
    }

    /// out += Bᵀ w (a dual vector over the vertices).
    pub fn add_transpose(&self, w: &[f64], out: &mut [f64]) {
        for (r, &wk) in self.rows.iter().zip(w) {
            for &(v, l) in r {
                out[v] += l * wk;
            }
        }
    }

    /// The nonzeros (vertex, weight) of row k of B.
    pub fn row(&self, k: usize) -> &[(usize, f64); 3] {
        &self.rows[k]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_linear_fields_exactly_and_rejects_outside_points() {
        let mesh = Mesh::unit_square(8);
        let pts = [[0.13, 0.77], [0.5, 0.5], [1.0, 0.0]];
        let b = PointObservation::new(&mesh, &pts).unwrap();
        let u: Vec<f64> = mesh
            .vertices()
            .iter()
            .map(|p| 2.0 * p[0] - 3.0 * p[1] + 1.0)
            .collect();
        for (q, p) in b.apply(&u).iter().zip(&pts) {
            assert!((q - (2.0 * p[0] - 3.0 * p[1] + 1.0)).abs() < 1e-12);
        }
        let err = PointObservation::new(&mesh, &[[0.5, 0.5], [1.2, 0.3]]).unwrap_err();
        assert_eq!(err.index, 1);
    }
}
