//! P1 element integrals and global assembly.
//!
//! Conventions: a nodal vector `u` holds the P1 coefficients u_h = Σ_k u_k φ_k in the vertex
//! ordering of [`Mesh`]; "load vectors" are dual vectors (b_k = ∫ f φ_k dx), i.e. they live in the
//! ℓ² dual of the nodal coefficients.

use super::mesh::Mesh;
use super::quadrature::DEGREE4;
use super::sparse::SparsePattern;

/// Local P1 mass matrix ∫_T φ_a φ_b dx = |T|/12 (1 + δ_ab).
pub fn local_mass(area: f64) -> [[f64; 3]; 3] {
    let (d, o) = (area / 6.0, area / 12.0);
    [[d, o, o], [o, d, o], [o, o, d]]
}

/// Assembles the mass matrix M_ij = ∫ φ_i φ_j dx on `pattern`.
pub fn assemble_mass(mesh: &Mesh, pattern: &SparsePattern) -> Vec<f64> {
    let mut values = pattern.zeros();
    for (t, g) in mesh.geometry().iter().enumerate() {
        pattern.add_local(&mut values, t, &local_mass(g.area));
    }
    values
}

/// Assembles the anisotropic stiffness K_ij = ∫ Θ ∇φ_i · ∇φ_j dx for a constant symmetric tensor Θ.
pub fn assemble_stiffness(mesh: &Mesh, pattern: &SparsePattern, theta: [[f64; 2]; 2]) -> Vec<f64> {
    let mut values = pattern.zeros();
    for (t, g) in mesh.geometry().iter().enumerate() {
        let mut local = [[0.0; 3]; 3];
        for a in 0..3 {
            let tg = [
                theta[0][0] * g.grad[a][0] + theta[0][1] * g.grad[a][1],
                theta[1][0] * g.grad[a][0] + theta[1][1] * g.grad[a][1],
            ];
            for b in 0..3 {
                local[a][b] = g.area * (tg[0] * g.grad[b][0] + tg[1] * g.grad[b][1]);
            }
        }
        pattern.add_local(&mut values, t, &local);
    }
    values
}

/// Adds `coefficient · ∫_Γ φ_i φ_j ds` (a Robin / boundary mass term) over the boundary edges
/// `edges` to `values`.
///
/// Every vertex of the edges must be an unknown of `pattern`.
pub fn add_boundary_mass(
    mesh: &Mesh,
    pattern: &SparsePattern,
    edges: &[[usize; 2]],
    coefficient: f64,
    values: &mut [f64],
) {
    {
        for &[a, b] in edges {
            let len = mesh.edge_length(a, b);
            let (d, o) = (coefficient * len / 3.0, coefficient * len / 6.0);
            for (r, c, v) in [(a, a, d), (b, b, d), (a, b, o), (b, a, o)] {
                let slot = pattern
                    .slot(r, c)
                    .expect("boundary vertices are unknowns of the pattern");
                values[slot] += v;
            }
        }
    }
}

/// ∫_T e^m dx for every triangle, and its derivative with respect to the three vertex values of m,
/// ∂/∂m_a ∫_T e^m dx = ∫_T e^m λ_a dx, both by the degree-4 rule (m is P1, so e^m is evaluated
/// exactly at the quadrature points).
#[derive(Debug, Clone)]
pub struct ExpCoefficient {
    /// W_t = ∫_T e^m dx
    pub integral: Vec<f64>,
    /// dW_t\[a\] = ∫_T e^m λ_a dx
    pub derivative: Vec<[f64; 3]>,
}

impl ExpCoefficient {
    /// Integrals of e^m over each triangle of `mesh` for the nodal field `m`.
    pub fn new(mesh: &Mesh, m: &[f64]) -> Self {
        let mut integral = Vec::with_capacity(mesh.num_triangles());
        let mut derivative = Vec::with_capacity(mesh.num_triangles());
        for (tri, g) in mesh.triangles().iter().zip(mesh.geometry()) {
            let mv = [m[tri[0]], m[tri[1]], m[tri[2]]];
            let mut w = 0.0;
            let mut dw = [0.0; 3];
            for q in &DEGREE4 {
                let l = q.barycentric;
                let e = q.weight * (l[0] * mv[0] + l[1] * mv[1] + l[2] * mv[2]).exp();
                w += e;
                dw[0] += e * l[0];
                dw[1] += e * l[1];
                dw[2] += e * l[2];
            }
            integral.push(g.area * w);
            derivative.push([g.area * dw[0], g.area * dw[1], g.area * dw[2]]);
        }
        ExpCoefficient {
            integral,
            derivative,
        }
    }
}

/// Local load ∫_T κ(x) g(u) λ_a dx of a nonlinear term, by the degree-4 rule, for the P1 values
/// `ut` of u on the triangle; `weights[q]` = w_q |T| κ(x_q) (quadrature weight × area × coefficient).
#[inline]
pub fn nonlinear_load(weights: &[f64; 6], ut: [f64; 3], g: impl Fn(f64) -> f64) -> [f64; 3] {
    let mut local = [0.0; 3];
    for (q, w) in DEGREE4.iter().zip(weights) {
        let l = q.barycentric;
        let s = w * g(l[0] * ut[0] + l[1] * ut[1] + l[2] * ut[2]);
        for a in 0..3 {
            local[a] += s * l[a];
        }
    }
    local
}

/// Local weighted mass ∫_T κ(x) g(u) λ_a λ_b dx, same conventions as [`nonlinear_load`].
#[inline]
pub fn nonlinear_mass(weights: &[f64; 6], ut: [f64; 3], g: impl Fn(f64) -> f64) -> [[f64; 3]; 3] {
    let mut local = [[0.0; 3]; 3];
    for (q, w) in DEGREE4.iter().zip(weights) {
        let l = q.barycentric;
        let s = w * g(l[0] * ut[0] + l[1] * ut[1] + l[2] * ut[2]);
        for a in 0..3 {
            for b in 0..3 {
                local[a][b] += s * l[a] * l[b];
            }
        }
    }
    local
}

/// The load vector b_k = ∫ f φ_k dx over all vertices (degree-4 quadrature).
pub fn load_vector(mesh: &Mesh, f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    let mut b = vec![0.0; mesh.num_vertices()];
    for (tri, g) in mesh.triangles().iter().zip(mesh.geometry()) {
        let p = [
            mesh.vertices()[tri[0]],
            mesh.vertices()[tri[1]],
            mesh.vertices()[tri[2]],
        ];
        for q in &DEGREE4 {
            let l = q.barycentric;
            let x = l[0] * p[0][0] + l[1] * p[1][0] + l[2] * p[2][0];
            let y = l[0] * p[0][1] + l[1] * p[1][1] + l[2] * p[2][1];
            let fw = g.area * q.weight * f(x, y);
            for a in 0..3 {
                b[tri[a]] += fw * l[a];
            }
        }
    }
    b
}

/// Adds the point source `strength · δ_x` to the dual vector `b`: b_k += strength · φ_k(x).
/// Returns `None` (and leaves `b` untouched) when x lies outside the mesh.
pub fn add_point_source(mesh: &Mesh, point: [f64; 2], strength: f64, b: &mut [f64]) -> Option<()> {
    let (t, lam) = mesh.locate(point[0], point[1])?;
    for (a, &v) in mesh.triangles()[t].iter().enumerate() {
        b[v] += strength * lam[a];
    }
    Some(())
}

/// ‖u_h − u‖_{L²} for the nodal field `u_h` and an exact function `u` (degree-4 quadrature).
pub fn l2_error(mesh: &Mesh, u_h: &[f64], u: impl Fn(f64, f64) -> f64) -> f64 {
    let mut sum = 0.0;
    for (tri, g) in mesh.triangles().iter().zip(mesh.geometry()) {
        let p = [
            mesh.vertices()[tri[0]],
            mesh.vertices()[tri[1]],
            mesh.vertices()[tri[2]],
        ];
        for q in &DEGREE4 {
            let l = q.barycentric;
            let x = l[0] * p[0][0] + l[1] * p[1][0] + l[2] * p[2][0];
            let y = l[0] * p[0][1] + l[1] * p[1][1] + l[2] * p[2][1];
            let uh = l[0] * u_h[tri[0]] + l[1] * u_h[tri[1]] + l[2] * u_h[tri[2]];
            sum += g.area * q.weight * (uh - u(x, y)).powi(2);
        }
    }
    sum.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fem::sparse::DofMap;

    #[test]
    fn mass_and_stiffness_reproduce_known_integrals() {
        let mesh = Mesh::unit_square(5);
        let dofs = DofMap::all(mesh.num_vertices());
        let pattern = SparsePattern::new(&mesh, &dofs);
        let ones = vec![1.0; mesh.num_vertices()];
        let x: Vec<f64> = mesh.vertices().iter().map(|p| p[0]).collect();
        let mut y = vec![0.0; ones.len()];
        // 1ᵀ M 1 = |Ω| = 1
        pattern.mul(&assemble_mass(&mesh, &pattern), &ones, &mut y);
        assert!((y.iter().sum::<f64>() - 1.0).abs() < 1e-13);
        // K 1 = 0 and xᵀ K_Θ x = ∫ Θ_00 = Θ_00
        let k = assemble_stiffness(&mesh, &pattern, [[2.0, 0.3], [0.3, 0.5]]);
        pattern.mul(&k, &ones, &mut y);
        assert!(y.iter().all(|v| v.abs() < 1e-12));
        pattern.mul(&k, &x, &mut y);
        let xkx: f64 = x.iter().zip(&y).map(|(a, b)| a * b).sum();
        assert!((xkx - 2.0).abs() < 1e-12);
        // boundary mass: 1ᵀ M_∂ 1 = perimeter of the chosen sides
        let mut mb = pattern.zeros();
        let edges = [
            mesh.group_edges("left").unwrap(),
            mesh.group_edges("top").unwrap(),
        ]
        .concat();
        add_boundary_mass(&mesh, &pattern, &edges, 1.5, &mut mb);
        pattern.mul(&mb, &ones, &mut y);
        assert!((y.iter().sum::<f64>() - 3.0).abs() < 1e-13);
    }

    #[test]
    fn point_source_pairs_with_interpolation() {
        // bᵀu = strength · u(x) for any P1 field u
        let mesh = Mesh::unit_square(6);
        let mut b = vec![0.0; mesh.num_vertices()];
        add_point_source(&mesh, [0.37, 0.61], 2.5, &mut b).unwrap();
        let u: Vec<f64> = mesh
            .vertices()
            .iter()
            .map(|p| 1.0 + 3.0 * p[0] - p[1])
            .collect();
        let btu: f64 = b.iter().zip(&u).map(|(x, y)| x * y).sum();
        assert!((btu - 2.5 * (1.0 + 3.0 * 0.37 - 0.61)).abs() < 1e-12);
        assert!(add_point_source(&mesh, [1.5, 0.5], 1.0, &mut b).is_none());
    }

    #[test]
    fn exp_coefficient_of_constant_field() {
        let mesh = Mesh::unit_square(3);
        let m = vec![0.7; mesh.num_vertices()];
        let c = ExpCoefficient::new(&mesh, &m);
        let total: f64 = c.integral.iter().sum();
        assert!((total - 0.7f64.exp()).abs() < 1e-12);
        for (w, dw) in c.integral.iter().zip(&c.derivative) {
            assert!((dw.iter().sum::<f64>() - w).abs() < 1e-14);
        }
    }
}
