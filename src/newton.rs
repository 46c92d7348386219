//! Newton's method with backtracking (Armijo) line search on the residual norm, shared by every
//! nonlinear model.
//!
//! Iterates u ← u + α δu with A(u) δu = −r(u); α = 1, ½, ¼, … until the sufficient decrease
//! ‖r(u + α δu)‖ ≤ (1 − c α) ‖r(u)‖ holds. Converged when ‖r‖ ≤ max(abs_tol, rel_tol ‖r(u₀)‖).
//! The factorization of A at the *converged* state is returned, so that derivative solves at that
//! point (J v, Jᵀ w, the full Jacobian) are exact for the discrete model.

use std::time::Instant;

use crate::error::{Error, Result};
use crate::fem::sparse::LinearSolver;

/// Stopping and line-search parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewtonSettings {
    /// Relative tolerance on ‖r‖ / ‖r(u₀)‖.
    pub rel_tol: f64,
    /// Absolute tolerance on ‖r‖.
    pub abs_tol: f64,
    /// Maximum Newton iterations.
    pub max_iterations: usize,
    /// Maximum step halvings per iteration.
    pub max_backtracks: usize,
    /// Armijo constant c.
    pub armijo: f64,
}

impl Default for NewtonSettings {
    fn default() -> Self {
        NewtonSettings {
            rel_tol: 1e-10,
            abs_tol: 1e-12,
            max_iterations: 50,
            max_backtracks: 20,
            armijo: 1e-4,
        }
    }
}

/// A nonlinear system r(u) = 0 in n unknowns.
pub trait NonlinearSystem {
    /// r(u)
    fn residual(&self, u: &[f64]) -> Vec<f64>;
    /// The factored Jacobian A(u) = ∂r/∂u.
    fn factor_jacobian(&self, u: &[f64]) -> Result<Box<dyn LinearSolver>>;
    /// True when r is affine in u: one Newton step then solves the system exactly and is taken
    /// without line search or a second residual evaluation.
    fn is_linear(&self) -> bool {
        false
    }
}

/// A converged Newton solve.
pub struct NewtonSolution {
    /// The solution u.
    pub u: Vec<f64>,
    /// A(u) factored at the solution.
    pub factor: Box<dyn LinearSolver>,
    /// ‖r‖ at every iterate, starting with u₀.
    pub residual_norms: Vec<f64>,
    /// Seconds in residual assembly, Jacobian assembly + factorization, and solves.
    pub seconds: [f64; 3],
}

impl NewtonSolution {
    /// Newton iterations taken.
    pub fn iterations(&self) -> usize {
        self.residual_norms.len() - 1
    }
}

fn norm(r: &[f64]) -> f64 {
    r.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn history(norms: &[f64]) -> String {
    norms
        .iter()
        .map(|r| format!("{r:.3e}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Solves r(u) = 0 from `u0`; `what` names the model in errors.
pub fn solve(
    system: &dyn NonlinearSystem,
    u0: Vec<f64>,
    settings: &NewtonSettings,
    what: &str,
) -> Result<NewtonSolution> {
    let mut seconds = [0.0; 3];
    let timed = |slot: usize, seconds: &mut [f64; 3], t: Instant| {
        seconds[slot] += t.elapsed().as_secs_f64()
    };
    let mut u = u0;
    let t = Instant::now();
    let mut r = system.residual(&u);
    timed(0, &mut seconds, t);
    let mut r_norm = norm(&r);
    if !r_norm.is_finite() {
        return Err(Error::numerical(
            what,
            format!("the residual at the initial guess is not finite ({r_norm})"),
        ));
    }
    let tol = settings.abs_tol.max(settings.rel_tol * r_norm);
    let mut norms = vec![r_norm];
    let mut factor: Option<Box<dyn LinearSolver>> = None;
    loop {
        if r_norm <= tol {
            let factor = match factor {
                Some(f) if system.is_linear() => f,
                _ => {
                    let t = Instant::now();
                    let f = system.factor_jacobian(&u)?;
                    timed(1, &mut seconds, t);
                    f
                }
            };
            return Ok(NewtonSolution {
                u,
                factor,
                residual_norms: norms,
                seconds,
            });
        }
        if norms.len() > settings.max_iterations {
            return Err(Error::numerical(
                what,
                format!(
                    "Newton did not converge in {} iterations: final residual {r_norm:.3e} (tolerance {tol:.3e}); residual history [{}]",
                    settings.max_iterations,
                    history(&norms)
                ),
            ));
        }
        let t = Instant::now();
        let f = system.factor_jacobian(&u).map_err(|e| {
            Error::numerical(
                what,
                format!(
                    "{e} at Newton iteration {}; residual history [{}]",
                    norms.len() - 1,
                    history(&norms)
                ),
            )
        })?;
        timed(1, &mut seconds, t);
        let t = Instant::now();
        let mut du: Vec<f64> = r.iter().map(|x| -x).collect();
        f.solve_in_place(&mut du);
        timed(2, &mut seconds, t);
        if system.is_linear() {
            // one exact step solves a linear system: no line search, no second residual
            u.iter_mut().zip(&du).for_each(|(u, d)| *u += d);
            return Ok(NewtonSolution {
                u,
                factor: f,
                residual_norms: norms,
                seconds,
            });
        }
        factor = Some(f);
        let mut alpha = 1.0;
        let mut accepted = false;
        for _ in 0..=settings.max_backtracks {
            let trial: Vec<f64> = u.iter().zip(&du).map(|(a, b)| a + alpha * b).collect();
            let t = Instant::now();
            let r_trial = system.residual(&trial);
            timed(0, &mut seconds, t);
            let trial_norm = norm(&r_trial);
            if trial_norm.is_finite() && trial_norm <= (1.0 - settings.armijo * alpha) * r_norm {
                u = trial;
                r = r_trial;
                r_norm = trial_norm;
                accepted = true;
                break;
            }
            alpha *= 0.5;
        }
        if !accepted {
            return Err(Error::numerical(
                what,
                format!(
                    "Newton line search failed after {} step halvings: final residual {r_norm:.3e}; residual history [{}]",
                    settings.max_backtracks,
                    history(&norms)
                ),
            ));
        }
        norms.push(r_norm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// r(u) = u³ + u − b componentwise (A = diag(3u² + 1)).
    struct Cubic(Vec<f64>);
    struct Diag(Vec<f64>);
    impl LinearSolver for Diag {
        fn dim(&self) -> usize {
            self.0.len()
        }
        fn solve_in_place(&self, x: &mut [f64]) {
            x.iter_mut().zip(&self.0).for_each(|(x, d)| *x /= d);
        }
        fn solve_transpose_many_in_place(&self, x: &mut [f64], _: usize) {
            self.solve_in_place(x)
        }
    }
    impl NonlinearSystem for Cubic {
        fn residual(&self, u: &[f64]) -> Vec<f64> {
            u.iter()
                .zip(&self.0)
                .map(|(u, b)| u * u * u + u - b)
                .collect()
        }
        fn factor_jacobian(&self, u: &[f64]) -> Result<Box<dyn LinearSolver>> {
            Ok(Box::new(Diag(
                u.iter().map(|u| 3.0 * u * u + 1.0).collect(),
            )))
        }
    }

    #[test]
    fn converges_quadratically_with_line_search_from_far_away() {
        let sys = Cubic(vec![10.0, -3.0, 0.5]);
        let sol = solve(
            &sys,
            vec![50.0, 40.0, -30.0],
            &NewtonSettings::default(),
            "cubic",
        )
        .unwrap();
        for (u, b) in sol.u.iter().zip(&sys.0) {
            assert!((u * u * u + u - b).abs() < 1e-9);
        }
        // last steps: r_{k+1} ≤ C r_k²
        let n = &sol.residual_norms;
        let k = n.len() - 2;
        assert!(n[k + 1] <= 10.0 * n[k] * n[k], "history {n:?}");
    }

    #[test]
    fn failure_reports_model_and_residual_history() {
        struct NoRoot;
        impl NonlinearSystem for NoRoot {
            fn residual(&self, u: &[f64]) -> Vec<f64> {
                vec![u[0] * u[0] + 1.0]
            }
            fn factor_jacobian(&self, u: &[f64]) -> Result<Box<dyn LinearSolver>> {
                Ok(Box::new(Diag(vec![2.0 * u[0] + 1e-3])))
            }
        }
        let settings = NewtonSettings {
            max_iterations: 5,
            ..Default::default()
        };
        let err = solve(&NoRoot, vec![1.0], &settings, "no-root model")
            .err()
            .expect("no root")
            .to_string();
        assert!(
            err.contains("no-root model") && err.contains("residual"),
            "{err}"
        );
    }
}
