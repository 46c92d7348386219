//! Poisson equation with log-normal diffusion (paper §3.1.1, hIPPYlib's subsurface tutorial).
//!
//! State equation, for the parameter m (P1) and state u (P1):
//!   −∇·(e^m ∇u) = f in Ω = (0,1)²,  u = g on the Dirichlet sides,  e^m ∂u/∂n = 0 elsewhere;
//! weak form r(u, m; p) = ∫ e^m ∇u·∇p dx − ∫ f p dx = 0 for all p vanishing on the Dirichlet sides.
//! Observable q = B u (point values).
//!
//! Discretely K(m) u_f = F_f − K_fd g on the free nodes, with K(m)_ij = Σ_T W_T(m) ∇φ_i·∇φ_j |_T and
//! W_T(m) = ∫_T e^m dx (degree-4 quadrature). With the parameter–state coupling
//!   G = (∂r/∂m)ᵀ ∈ ℝ^{d_M × n_free},   G_ai = Σ_{T ∋ a, i} ∂W_T/∂m_a (D_T u_T)_i,
//! D_T = (∇λ_a·∇λ_b)_{ab}, the derivatives are
//!   J v = −B K⁻¹ Gᵀ v,    Jᵀ w = −G K⁻¹ Bᵀ w,    J = −(G K⁻¹ B_fᵀ)ᵀ (d_Q solves on one factor).
//! K is symmetric positive definite, so one Cholesky factor serves the forward, incremental and
//! adjoint solves; G is assembled once per point, on first use.

use std::sync::OnceLock;
use std::time::Instant;

use ndarray::Array2;
use rayon::prelude::*;

use super::{ForwardTimings, PdeLinearization, PdeModel};
use crate::error::{check_finite_vector, Error, Result};
use crate::fem::assembly::{load_vector, ExpCoefficient};
use crate::fem::{CholeskyFactor, DofMap, Mesh, PointObservation, Side, SparsePattern};
use crate::map::{DifferentiableMap, Linearization};

/// A source term f(x, y).
pub type SourceFn = std::sync::Arc<dyn Fn(f64, f64) -> f64 + Send + Sync>;

/// What defines a Poisson problem besides the mesh.
#[derive(Clone)]
pub struct PoissonSettings {
    /// Source f, or `None` for f = 0.
    pub source: Option<SourceFn>,
    /// Dirichlet value on each constrained side (where two sides meet, the later one wins).
    pub dirichlet: Vec<(Side, f64)>,
    /// Observation points.
    pub observation_points: Vec<[f64; 2]>,
}

/// The Poisson forward model on one mesh: pattern, symbolic factorization, lifting and B are
/// built once here and shared by every solve.
pub struct PoissonModel {
    mesh: Mesh,
    dofs: DofMap,
    /// Nodal vector holding the Dirichlet values g (zero at free nodes).
    lift: Vec<f64>,
    /// F_f: the source's load vector on the free nodes.
    source_load: Vec<f64>,
    pattern: SparsePattern,
    /// Pattern of G = (∂r/∂m)ᵀ: rows all vertices, columns the free nodes.
    coupling_pattern: SparsePattern,
    symbolic: std::sync::Arc<faer::sparse::linalg::cholesky::SymbolicCholesky<usize>>,
    observation: PointObservation,
    /// For each triangle, the unknown (if any) of each of its vertices.
    triangle_dofs: Vec<[Option<usize>; 3]>,
}

impl PoissonModel {
    /// Builds the model on `mesh`. Observation points must lie in the unit square.
    pub fn new(mesh: Mesh, settings: &PoissonSettings) -> Result<Self> {
        let observation =
            PointObservation::new(&mesh, &settings.observation_points).map_err(|e| {
                Error::invalid(
                    "poisson model",
                    format!("observations point {}", e.index),
                    "a point in the unit square [0,1]²",
                    format!("({}, {})", e.point[0], e.point[1]),
                )
            })?;
        let mut lift = vec![0.0; mesh.num_vertices()];
        let mut constrained = Vec::new();
        for &(side, value) in &settings.dirichlet {
            for v in mesh.side_vertices(side) {
                lift[v] = value;
                constrained.push(v);
            }
        }
        let dofs = DofMap::without(mesh.num_vertices(), &constrained);
        if dofs.len() == mesh.num_vertices() {
            return Err(Error::invalid(
                "poisson model",
                "pde.dirichlet",
                "at least one Dirichlet side (the pure Neumann problem is singular)",
                "none",
            ));
        }
        let pattern = SparsePattern::new(&mesh, &dofs);
        let coupling_pattern =
            SparsePattern::rectangular(&mesh, &DofMap::all(mesh.num_vertices()), &dofs);
        let symbolic = pattern.symbolic_cholesky();
        let source_load = match &settings.source {
            None => vec![0.0; dofs.len()],
            Some(f) => dofs.gather(&load_vector(&mesh, |x, y| f(x, y))),
        };
        let triangle_dofs = mesh
            .triangles()
            .iter()
            .map(|t| [dofs.dof(t[0]), dofs.dof(t[1]), dofs.dof(t[2])])
            .collect();
        Ok(PoissonModel {
            mesh,
            dofs,
            lift,
            source_load,
            pattern,
            coupling_pattern,
            symbolic,
            observation,
            triangle_dofs,
        })
    }

    /// Solves the state equation at m and keeps the factorization.
    pub fn solve(&self, m: &[f64]) -> Result<PoissonLinearization<'_>> {
        check_finite_vector(m, self.mesh.num_vertices(), "parameter", "m")?;
        let t0 = Instant::now();
        let coefficient = ExpCoefficient::new(&self.mesh, m);
        let mut values = self.pattern.zeros();
        let mut rhs = self.source_load.clone();
        for (t, (tri, g)) in self
            .mesh
            .triangles()
            .iter()
            .zip(self.mesh.geometry())
            .enumerate()
        {
            let d = g.gradient_products();
            let w = coefficient.integral[t];
            let mut local = [[0.0; 3]; 3];
            for a in 0..3 {
                for b in 0..3 {
                    local[a][b] = w * d[a][b];
                }
            }
            self.pattern.add_local(&mut values, t, &local);
            // lifting of the Dirichlet values: rhs_a −= K_ab g_b for free a, constrained b
            for a in 0..3 {
                if let Some(i) = self.triangle_dofs[t][a] {
                    for b in 0..3 {
                        if self.triangle_dofs[t][b].is_none() {
                            rhs[i] -= local[a][b] * self.lift[tri[b]];
                        }
                    }
                }
            }
        }
        let t1 = Instant::now();
        let factor = CholeskyFactor::new(
            &self.symbolic,
            &self.pattern,
            &values,
            "Poisson state operator K(m)",
        )?;
        let t2 = Instant::now();
        factor.solve_in_place(&mut rhs);
        let mut state = self.lift.clone();
        self.dofs.scatter(&rhs, &mut state);
        let output = self.observation.apply(&state);
        // D_T u_T, reused by every derivative at this point.
        let grad_state = self
            .mesh
            .triangles()
            .iter()
            .zip(self.mesh.geometry())
            .map(|(tri, g)| {
                let d = g.gradient_products();
                let u = [state[tri[0]], state[tri[1]], state[tri[2]]];
                [0, 1, 2].map(|a| d[a][0] * u[0] + d[a][1] * u[1] + d[a][2] * u[2])
            })
            .collect();
        let t3 = Instant::now();
        Ok(PoissonLinearization {
            model: self,
            coefficient_derivative: coefficient.derivative,
            grad_state,
            coupling: OnceLock::new(),
            factor,
            state,
            output,
            timings: ForwardTimings {
                assembly_s: (t1 - t0).as_secs_f64(),
                factorization_s: (t2 - t1).as_secs_f64(),
                solve_s: (t3 - t2).as_secs_f64(),
            },
        })
    }

    /// Number of unknowns after eliminating Dirichlet nodes.
    pub fn num_unknowns(&self) -> usize {
        self.dofs.len()
    }
}

/// The Poisson model linearized at m: the state, the Cholesky factor of K(m) and the
/// element data that make J v and Jᵀ w one solve each.
pub struct PoissonLinearization<'a> {
    model: &'a PoissonModel,
    coefficient_derivative: Vec<[f64; 3]>,
    grad_state: Vec<[f64; 3]>,
    /// Values of G = (∂r/∂m)ᵀ on the model's coupling pattern, assembled on first use.
    coupling: OnceLock<Vec<f64>>,
    factor: CholeskyFactor,
    state: Vec<f64>,
    output: Vec<f64>,
    timings: ForwardTimings,
}

impl PoissonLinearization<'_> {
    /// G = (∂r/∂m)ᵀ, local matrix G_T[a][b] = ∂W_T/∂m_a (D_T u_T)_b.
    fn coupling(&self) -> &[f64] {
        self.coupling.get_or_init(|| {
            let pattern = &self.model.coupling_pattern;
            let mut values = pattern.zeros();
            for (t, (dw, c)) in self
                .coefficient_derivative
                .iter()
                .zip(&self.grad_state)
                .enumerate()
            {
                let local = [0, 1, 2].map(|a| [dw[a] * c[0], dw[a] * c[1], dw[a] * c[2]]);
                pattern.add_local(&mut values, t, &local);
            }
            values
        })
    }
}

impl Linearization for PoissonLinearization<'_> {
    fn output(&self) -> &[f64] {
        &self.output
    }

    fn jvp(&self, v: &[f64]) -> Vec<f64> {
        let model = self.model;
        let mut rhs = vec![0.0; model.dofs.len()];
        model
            .coupling_pattern
            .mul_transpose(self.coupling(), v, &mut rhs);
        rhs.iter_mut().for_each(|r| *r = -*r);
        self.factor.solve_in_place(&mut rhs);
        let mut du = vec![0.0; model.mesh.num_vertices()];
        model.dofs.scatter(&rhs, &mut du);
        model.observation.apply(&du)
    }

    fn vjp(&self, w: &[f64]) -> Vec<f64> {
        let model = self.model;
        let mut b = vec![0.0; model.mesh.num_vertices()];
        model.observation.add_transpose(w, &mut b);
        let mut p = model.dofs.gather(&b);
        self.factor.solve_in_place(&mut p);
        let mut out = vec![0.0; model.mesh.num_vertices()];
        model.coupling_pattern.mul(self.coupling(), &p, &mut out);
        out.iter_mut().for_each(|o| *o = -*o);
        out
    }

    /// All d_Q rows: one multi-right-hand-side solve K P = B_fᵀ on the kept factor, then
    /// row k = −G P_k, one sparse product per row, rows in parallel.
    fn jacobian(&self) -> Array2<f64> {
        let model = self.model;
        let (n, d_q, d_m) = (
            model.dofs.len(),
            model.observation.len(),
            model.mesh.num_vertices(),
        );
        let mut rhs = vec![0.0; n * d_q];
        for k in 0..d_q {
            for &(v, l) in model.observation.row(k) {
                if let Some(i) = model.dofs.dof(v) {
                    rhs[k * n + i] += l;
                }
            }
        }
        self.factor.solve_many_in_place(&mut rhs, d_q);
        let coupling = self.coupling();
        let mut jac = Array2::zeros((d_q, d_m));
        jac.as_slice_mut()
            .expect("fresh arrays are contiguous")
            .par_chunks_mut(d_m)
            .zip(rhs.par_chunks(n))
            .for_each(|(row, p)| {
                model.coupling_pattern.mul(coupling, p, row);
                row.iter_mut().for_each(|r| *r = -*r);
            });
        jac
    }
}

impl PdeLinearization for PoissonLinearization<'_> {
    fn state(&self) -> &[f64] {
        &self.state
    }
    fn timings(&self) -> ForwardTimings {
        self.timings
    }
}

impl DifferentiableMap for PoissonModel {
    fn input_dim(&self) -> usize {
        self.mesh.num_vertices()
    }
    fn output_dim(&self) -> usize {
        self.observation.len()
    }
    fn linearize(&self, m: &[f64]) -> Result<Box<dyn Linearization + '_>> {
        Ok(Box::new(self.solve(m)?))
    }
}

impl PdeModel for PoissonModel {
    fn name(&self) -> &'static str {
        "poisson"
    }
    fn mesh(&self) -> &Mesh {
        &self.mesh
    }
    fn solve_pde(&self, m: &[f64]) -> Result<Box<dyn PdeLinearization + '_>> {
        Ok(Box::new(self.solve(m)?))
    }
}
