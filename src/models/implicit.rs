//! Derivatives of an observable of an implicitly defined state, shared by every PDE model.
//!
//! The state u(m) solves r(u, m) = 0 on the free nodes; q = B u. With A = ∂r/∂u (factored at the
//! solution) and the parameter–state coupling G = (∂r/∂m)ᵀ ∈ ℝ^{d_M × n_free}, the implicit
//! function theorem gives
//!   J v = −B A⁻¹ Gᵀ v,     Jᵀ w = −G A⁻ᵀ Bᵀ w,     J = −(G A⁻ᵀ B_fᵀ)ᵀ,
//! so J v and Jᵀ w cost one solve each on the kept factor, and the full Jacobian d_Q solves
//! (done as one blocked multi-right-hand-side solve).
//!
//! Second derivatives (hIPPYlib's Hessian action, for models that provide the curvature of the
//! residual): with ℒ(u, m, p) = wᵀB u + pᵀ r(u, m), the adjoint Aᵀ p = −Bᵀ w gives
//! ∇_m(wᵀq) = (∂r/∂m)ᵀ p = G p, and its derivative along v is
//!   û = −A⁻¹ Gᵀ v,   Aᵀ p̂ = −(ℒ_uu û + ℒ_um v),   H_w v = ℒ_mu û + ℒ_mm v + G p̂:
//! two more solves on the kept factor.

use ndarray::Array2;
use rayon::prelude::*;

use super::{ForwardStats, PdeLinearization};
use crate::fem::sparse::LinearSolver;
use crate::fem::{DofMap, PointObservation, SparsePattern};
use crate::map::Linearization;

/// The curvature of the residual's pairing ℓ(u, m) = pᵀ r(u, m) with a fixed adjoint p, as a
/// model that provides second derivatives computes it. Nodal vectors are full (Dirichlet nodes
/// included, where p and û vanish).
pub trait ResidualCurvature: Send + Sync {
    /// ℒ_uu û + ℒ_um v on the free nodes: the derivative in u of pᵀ[(∂r/∂u) û + (∂r/∂m) v].
    fn state_rows(&self, state: &[f64], p: &[f64], u_hat: &[f64], v: &[f64]) -> Vec<f64>;
    /// ℒ_mu û + ℒ_mm v ∈ ℝ^{d_M}: the derivative in m of the same pairing.
    fn parameter_rows(&self, state: &[f64], p: &[f64], u_hat: &[f64], v: &[f64]) -> Vec<f64>;
}

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
    /// Second derivatives of the residual, when the model provides them.
    pub curvature: Option<Box<dyn ResidualCurvature + 'a>>,
    /// The adjoint p of the last cotangent w (full nodal vector), reused while w is the same
    /// (every Hessian action of one Newton iteration has w = Γ⁻¹(q − d)).
    pub adjoint_cache: std::sync::Mutex<Option<(Vec<f64>, Vec<f64>)>>,
}

impl ImplicitLinearization<'_> {
    /// û = −A⁻¹ Gᵀ v on the free nodes.
    fn incremental_state(&self, v: &[f64]) -> Vec<f64> {
        let mut rhs = vec![0.0; self.dofs.len()];
        self.coupling_pattern
            .mul_transpose(&self.coupling, v, &mut rhs);
        rhs.iter_mut().for_each(|r| *r = -*r);
        self.solver.solve_in_place(&mut rhs);
        rhs
    }

    /// Bᵀ w on the free nodes (an adjoint right-hand side).
    fn observed_load(&self, w: &[f64]) -> Vec<f64> {
        let mut b = vec![0.0; self.state.len()];
        self.observation.add_transpose(w, &mut b);
        self.dofs.gather(&b)
    }

    /// The adjoint Aᵀ p = −Bᵀ w on the free nodes.
    fn adjoint_free(&self, w: &[f64]) -> Vec<f64> {
        let mut p = self.observed_load(w);
        self.solver.solve_transpose_in_place(&mut p);
        p.iter_mut().for_each(|x| *x = -*x);
        p
    }

    /// The adjoint p as a full nodal vector, from the cache when w is the last one.
    fn adjoint(&self, w: &[f64]) -> Vec<f64> {
        let mut cache = self.adjoint_cache.lock().expect("adjoint cache");
        if let Some((cached_w, p)) = cache.as_ref() {
            if cached_w.as_slice() == w {
                return p.clone();
            }
        }
        let p = self.full(&self.adjoint_free(w));
        *cache = Some((w.to_vec(), p.clone()));
        p
    }

    /// ℒ_mu û + ℒ_mm v + G A⁻ᵀ(extra − ℒ_uu û − ℒ_um v) for û = −A⁻¹Gᵀv: the second-order
    /// action with an extra right-hand side `extra` (free nodes) folded into its adjoint solve.
    fn second_order_with(
        &self,
        curvature: &dyn ResidualCurvature,
        w: &[f64],
        u_hat: &[f64],
        v: &[f64],
        extra: Option<&[f64]>,
    ) -> Vec<f64> {
        let p = self.adjoint(w);
        let u_hat = self.full(u_hat);
        let mut rhs = curvature.state_rows(&self.state, &p, &u_hat, v);
        rhs.iter_mut().for_each(|x| *x = -*x);
        if let Some(extra) = extra {
            rhs.iter_mut().zip(extra).for_each(|(r, e)| *r += e);
        }
        self.solver.solve_transpose_in_place(&mut rhs);
        let mut out = curvature.parameter_rows(&self.state, &p, &u_hat, v);
        let mut g_x = vec![0.0; out.len()];
        self.coupling_pattern.mul(&self.coupling, &rhs, &mut g_x);
        out.iter_mut().zip(&g_x).for_each(|(o, g)| *o += g);
        out
    }

    /// A free-node vector as a full nodal one (zero at Dirichlet nodes).
    fn full(&self, free: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.state.len()];
        self.dofs.scatter(free, &mut out);
        out
    }
}

impl Linearization for ImplicitLinearization<'_> {
    fn output(&self) -> &[f64] {
        &self.output
    }

    fn jvp(&self, v: &[f64]) -> Vec<f64> {
        let du = self.full(&self.incremental_state(v));
        self.observation.apply(&du)
    }

    /// H_w v = ℒ_mu û + ℒ_mm v + G p̂ (module doc): two solves on the kept factor (û and p̂),
    /// plus the adjoint p once per cotangent w.
    fn second_order_action(&self, w: &[f64], v: &[f64]) -> Option<Vec<f64>> {
        let curvature = self.curvature.as_ref()?;
        let u_hat = self.incremental_state(v);
        Some(self.second_order_with(curvature.as_ref(), w, &u_hat, v, None))
    }

    /// JᵀΓ⁻¹J v + H_w v with one incremental state û and one adjoint solve: since
    /// Jᵀ y = −G A⁻ᵀ Bᵀ y, the Gauss–Newton part joins p̂'s right-hand side as −Bᵀ Γ⁻¹ B û.
    fn misfit_hessian_action(
        &self,
        w: &[f64],
        noise_precision: &dyn Fn(&[f64]) -> Vec<f64>,
        v: &[f64],
    ) -> Option<Vec<f64>> {
        let curvature = self.curvature.as_ref()?;
        let u_hat = self.incremental_state(v);
        let jv: Vec<f64> = noise_precision(&self.observation.apply(&self.full(&u_hat)))
            .iter()
            .map(|x| -x)
            .collect();
        let extra = self.observed_load(&jv);
        Some(self.second_order_with(curvature.as_ref(), w, &u_hat, v, Some(&extra)))
    }

    /// Jᵀ w = G p with the adjoint Aᵀ p = −Bᵀ w.
    fn vjp(&self, w: &[f64]) -> Vec<f64> {
        let p = self.adjoint_free(w);
        let mut out = vec![0.0; self.coupling_pattern.nrows()];
        self.coupling_pattern.mul(&self.coupling, &p, &mut out);
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
