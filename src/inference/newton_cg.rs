//! MAP point by inexact Newton–CG (hIPPYlib's ReducedSpaceNewtonCG):
//! - Hessian: Gauss–Newton H = R + Jᵀ Γ⁻¹ J for the first `gauss_newton_iterations` iterations
//!   (robust far from the MAP point: always positive definite), then the full Hessian
//!   H = R + Jᵀ Γ⁻¹ J + Σ_k [Γ⁻¹(q − d)]_k ∇²q_k where the map provides second derivatives
//!   (the diffusion models do, by incremental forward/adjoint solves; maps that do not, such as
//!   the surrogates, stay with Gauss–Newton). CG–Steihaug stops at negative curvature;
//! - Newton system H p = −g solved by CG–Steihaug preconditioned with the prior covariance
//!   C = R⁻¹, to the Eisenstat–Walker tolerance min(0.5, √(‖g‖/‖g₀‖)) relative to ‖g‖_C;
//! - Armijo backtracking (c = 1e-4, halving); a map evaluation that fails counts as
//!   insufficient decrease;
//! - convergence when ‖g‖_C ≤ max(rel_tol ‖g₀‖_C, abs_tol), with ‖g‖_C = √(gᵀ C g).

use std::time::Instant;

use super::posterior::{axpy, dot, Cost, Posterior};
use crate::error::{Error, Result};

/// Settings of Newton–CG.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewtonCgSettings {
    pub max_iterations: usize,
    pub rel_tolerance: f64,
    pub abs_tolerance: f64,
    pub max_cg_iterations: usize,
    pub armijo_c: f64,
    pub max_backtracks: usize,
    /// Iterations with the Gauss–Newton Hessian before switching to the full Hessian
    /// (hIPPYlib's `GN_iter`; `usize::MAX`: Gauss–Newton throughout).
    pub gauss_newton_iterations: usize,
}

impl Default for NewtonCgSettings {
    fn default() -> Self {
        NewtonCgSettings {
            max_iterations: 30,
            rel_tolerance: 1e-6,
            abs_tolerance: 1e-12,
            max_cg_iterations: 200,
            armijo_c: 1e-4,
            max_backtracks: 12,
            gauss_newton_iterations: 5,
        }
    }
}

/// One Newton iteration.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewtonRecord {
    pub iteration: usize,
    pub cost: Cost,
    /// ‖g‖_C
    pub gradient_norm: f64,
    pub cg_iterations: usize,
    pub step_length: f64,
    /// "gauss-newton" or "newton": the Hessian of this iteration's CG solve.
    pub hessian: &'static str,
}

/// The MAP point and how it was found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MapResult {
    #[serde(skip)]
    pub m: Vec<f64>,
    pub cost: Cost,
    pub converged: bool,
    pub iterations: usize,
    pub history: Vec<NewtonRecord>,
    /// Map evaluations (forward solves or surrogate calls), incremental solves (J v, Jᵀ w).
    pub evaluations: usize,
    pub incremental_solves: usize,
    pub wall_s: f64,
}

/// Preconditioned CG–Steihaug for H p = −g (C-preconditioned): stops at relative residual
/// `tol` in the C-norm, at negative curvature (returning the last iterate, or −C g first).
fn cg_steihaug(
    apply_h: &dyn Fn(&[f64]) -> Vec<f64>,
    apply_c: &dyn Fn(&[f64]) -> Vec<f64>,
    g: &[f64],
    tol: f64,
    max_iter: usize,
) -> (Vec<f64>, usize) {
    let n = g.len();
    let mut p = vec![0.0; n];
    let mut r: Vec<f64> = g.iter().map(|v| -v).collect();
    let mut z = apply_c(&r);
    let mut d = z.clone();
    let mut rz = dot(&r, &z);
    let r0 = rz.sqrt();
    for it in 0..max_iter {
        if rz.sqrt() <= tol * r0 {
            return (p, it);
        }
        let hd = apply_h(&d);
        let curvature = dot(&d, &hd);
        if curvature <= 0.0 {
            if it == 0 {
                return (d, 1);
            }
            return (p, it);
        }
        let alpha = rz / curvature;
        p = axpy(&p, alpha, &d);
        r = axpy(&r, -alpha, &hd);
        z = apply_c(&r);
        let rz_new = dot(&r, &z);
        let beta = rz_new / rz;
        rz = rz_new;
        d = axpy(&z, beta, &d);
    }
    (p, max_iter)
}

/// Newton–CG from `m0`.
pub fn map_newton_cg(
    post: &Posterior<'_>,
    m0: &[f64],
    settings: &NewtonCgSettings,
) -> Result<MapResult> {
    let started = Instant::now();
    let evaluations_before = post.evaluations();
    let mut m = m0.to_vec();
    let mut history = Vec::new();
    let mut incremental = 0usize;
    let mut g0 = None;
    let mut converged = false;
    let mut point = post.linearize(&m)?;
    for iteration in 0..settings.max_iterations {
        let c_g = post.prior.covariance_mul(&point.gradient);
        let gnorm = dot(&point.gradient, &c_g).max(0.0).sqrt();
        let g0v = *g0.get_or_insert(gnorm);
        let mut record = NewtonRecord {
            iteration,
            cost: point.cost,
            gradient_norm: gnorm,
            cg_iterations: 0,
            step_length: 0.0,
            hessian: "gauss-newton",
        };
        if gnorm <= (settings.rel_tolerance * g0v).max(settings.abs_tolerance) {
            converged = true;
            history.push(record);
            break;
        }
        let tol = (gnorm / g0v).sqrt().min(0.5);
        // the full Hessian after the Gauss–Newton iterations, where the map has one
        let full = std::cell::Cell::new(false);
        let newton = iteration >= settings.gauss_newton_iterations;
        let apply_h = |v: &[f64]| {
            if newton {
                if let Some(h) = point.newton_hessian_action(post, v) {
                    full.set(true);
                    return h;
                }
            }
            point.hessian_action(post, v)
        };
        let apply_c = |v: &[f64]| post.prior.covariance_mul(v);
        let (p, cg_its) = cg_steihaug(
            &apply_h,
            &apply_c,
            &point.gradient,
            tol,
            settings.max_cg_iterations,
        );
        // two solves per Hessian product (J v, Jᵀ w; fused with the second-order term for the
        // full Hessian), plus the adjoint of the residual once per full-Newton iteration
        incremental += 2 * cg_its + usize::from(full.get());
        record.cg_iterations = cg_its;
        if full.get() {
            record.hessian = "newton";
        }
        let slope = dot(&point.gradient, &p);
        let mut alpha = 1.0;
        let mut accepted = None;
        for _ in 0..settings.max_backtracks {
            let trial = axpy(&m, alpha, &p);
            // a failed map evaluation is treated as insufficient decrease
            if let Ok(c) = post.cost(&trial) {
                if c.total <= point.cost.total + settings.armijo_c * alpha * slope {
                    accepted = Some(trial);
                    break;
                }
            }
            alpha *= 0.5;
        }
        let Some(trial) = accepted else {
            history.push(record);
            return Err(Error::numerical(
                "MAP (Newton–CG)",
                format!(
                    "no sufficient decrease after {} backtracking steps at iteration {iteration} (‖g‖_C = {gnorm:.3e})",
                    settings.max_backtracks
                ),
            ));
        };
        record.step_length = alpha;
        history.push(record);
        m = trial;
        point = post.linearize(&m)?;
    }
    Ok(MapResult {
        cost: point.cost,
        m,
        converged,
        iterations: history.len().saturating_sub(1),
        history,
        evaluations: post.evaluations() - evaluations_before,
        incremental_solves: incremental,
        wall_s: started.elapsed().as_secs_f64(),
    })
}
