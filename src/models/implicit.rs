//! Derivatives of an observable of an implicitly defined state, shared by every PDE model.
//!
//! The state u(m) solves r(u, m) = 0 on the free nodes; q = B u. With A = ∂r/∂u (factored at the
//! solution) and the parameter–state coupling G = (∂r/∂m)ᵀ ∈ ℝ^{d_M × n_free}, the implicit
//! function theorem gives
//!   J v = −B A⁻¹ Gᵀ v,     Jᵀ w = −G A⁻ᵀ Bᵀ w,     J = −(G A⁻ᵀ B_fᵀ)ᵀ,
//! so J v and Jᵀ w cost one solve each on the kept factor, and the full Jacobian d_Q solves
//! (done as one blocked multi-right-hand-side solve).

use ndarray::Array2;
use rayon::prelude::*;

use super::{ForwardStats, PdeLinearization};
use crate::fem::sparse::LinearSolver;
use crate::fem::{DofMap, PointObservation, SparsePattern};
use crate::map::Linearization;

/// A PDE model linearized at m.
pub struct ImplicitLinearization<'a> {
    /// Observation operator B on nodal fields.
    pub observation: &'a PointObservation,
    /// Free (unknown) nodes of the state.
    pub dofs: &'a DofMap,
    /// Pattern of G: rows are parameter nodes, columns the free state nodes.
    pub coupling_pattern: &'a SparsePattern,
    /// Values of G = (∂r/∂m)ᵀ.
    pub coupling: Vec<f64>,
    /// A = ∂r/∂u factored at the solution.
    pub solver: Box<dyn LinearSolver>,
    /// Nodal state u (Dirichlet values included).
    pub state: Vec<f64>,
    /// q = B u
    pub output: Vec<f64>,
    /// Cost of the forward solve.
    pub stats: ForwardStats,
}

impl Linearization for ImplicitLinearization<'_> {
    fn output(&self) -> &[f64] {
        &self.output
    }

    fn jvp(&self, v: &[f64]) -> Vec<f64> {
        let mut rhs = vec![0.0; self.dofs.len()];
        self.coupling_pattern
            .mul_transpose(&self.coupling, v, &mut rhs);
        rhs.iter_mut().for_each(|r| *r = -*r);
        self.solver.solve_in_place(&mut rhs);
        let mut du = vec![0.0; self.state.len()];
        self.dofs.scatter(&rhs, &mut du);
        self.observation.apply(&du)
    }

    fn vjp(&self, w: &[f64]) -> Vec<f64> {
        let mut b = vec![0.0; self.state.len()];
        self.observation.add_transpose(w, &mut b);
        let mut p = self.dofs.gather(&b);
        self.solver.solve_transpose_in_place(&mut p);
        let mut out = vec![0.0; self.coupling_pattern.nrows()];
        self.coupling_pattern.mul(&self.coupling, &p, &mut out);
        out.iter_mut().for_each(|o| *o = -*o);
        out
    }

    /// All d_Q rows: one multi-right-hand-side solve Aᵀ P = B_fᵀ on the kept factor, then
    /// row k = −G P_k, one sparse product per row, rows in parallel.
    fn jacobian(&self) -> Array2<f64> {
        let (n, d_q, d_m) = (
            self.dofs.len(),
            self.observation.len(),
            self.coupling_pattern.nrows(),
        );
        let mut rhs = vec![0.0; n * d_q];
        for k in 0..d_q {
            for &(v, l) in self.observation.row(k) {
                if let Some(i) = self.dofs.dof(v) {
                    rhs[k * n + i] += l;
                }
            }
        }
        self.solver.solve_transpose_many_in_place(&mut rhs, d_q);
        let mut jac = Array2::zeros((d_q, d_m));
        jac.as_slice_mut()
            .expect("fresh arrays are contiguous")
            .par_chunks_mut(d_m)
            .zip(rhs.par_chunks(n))
            .for_each(|(row, p)| {
                self.coupling_pattern.mul(&self.coupling, p, row);
                row.iter_mut().for_each(|r| *r = -*r);
            });
        jac
    }
}

impl PdeLinearization for ImplicitLinearization<'_> {
    fn state(&self) -> &[f64] {
        &self.state
    }
    fn stats(&self) -> &ForwardStats {
        &self.stats
    }
}
