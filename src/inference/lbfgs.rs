//! MAP point by L-BFGS (argmin), the alternative to Newton–CG.
//!
//! The optimization variable is y = A (m − m̄) (A the BiLaplacian operator), so that the prior
//! term ½ yᵀ M⁻¹ y has a mesh-independent condition number (that of the mass matrix) and L-BFGS
//! in the Euclidean inner product of y is not slowed by the prior's roughness penalty. The
//! gradient is ∂J/∂y = A⁻¹ g_m with g_m the posterior gradient in m. More–Thuente line search,
//! memory 10.

use std::time::Instant;

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;

use super::newton_cg::MapResult;
use super::posterior::Posterior;
use crate::error::{Error, Result};

/// The problem in z = y / s: the scale s = ‖∂J/∂y(y₀)‖^{−1/2} makes L-BFGS's first trial step
/// (a unit multiple of the gradient) a unit-norm step in y instead of one of size ‖g‖.
struct Reduced<'a, 'p> {
    post: &'a Posterior<'p>,
    scale: f64,
}

impl Reduced<'_, '_> {
    fn parameter(&self, z: &[f64]) -> Vec<f64> {
        let prior = self.post.prior;
        let y: Vec<f64> = z.iter().map(|v| v * self.scale).collect();
        prior
            .a_solve(&y)
            .iter()
            .zip(prior.mean())
            .map(|(a, b)| a + b)
            .collect()
    }
}

impl CostFunction for Reduced<'_, '_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, y: &Vec<f64>) -> std::result::Result<f64, argmin::core::Error> {
        // a failed solve is an infinite cost: the line search backs off
        Ok(self
            .post
            .cost(&self.parameter(y))
            .map_or(f64::INFINITY, |c| c.total))
    }
}

impl Gradient for Reduced<'_, '_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, y: &Vec<f64>) -> std::result::Result<Vec<f64>, argmin::core::Error> {
        let point = self.post.linearize(&self.parameter(y))?;
        // A symmetric: ∂J/∂y = A⁻ᵀ g = A⁻¹ g, and ∂J/∂z = s ∂J/∂y
        Ok(self
            .post
            .prior
            .a_solve(&point.gradient)
            .iter()
            .map(|v| v * self.scale)
            .collect())
    }
}

/// L-BFGS from `m0`; stops when ‖∂J/∂y‖ ≤ `tolerance` · ‖∂J/∂y(y₀)‖ or after `max_iterations`.
pub fn map_lbfgs(
    post: &Posterior<'_>,
    m0: &[f64],
    max_iterations: u64,
    tolerance: f64,
) -> Result<MapResult> {
    let started = Instant::now();
    let before = post.evaluations();
    let y0: Vec<f64> = post.prior.a_mul(
        &m0.iter()
            .zip(post.prior.mean())
            .map(|(a, b)| a - b)
            .collect::<Vec<_>>(),
    );
    let unscaled = Reduced { post, scale: 1.0 };
    let gy = unscaled
        .gradient(&y0)
        .map_err(|e| Error::numerical("MAP (L-BFGS)", e.to_string()))?;
    let gy_norm = gy
        .iter()
        .map(|v| v * v)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    let scale = gy_norm.powf(-0.5);
    let problem = Reduced { post, scale };
    let z0: Vec<f64> = y0.iter().map(|v| v / scale).collect();
    let g0_norm = gy_norm * scale;
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), 10)
        .with_tolerance_grad(tolerance * g0_norm)
        .and_then(|s| s.with_tolerance_cost(0.0))
        .map_err(|e| Error::numerical("MAP (L-BFGS)", e.to_string()))?;
    let result = Executor::new(problem, solver)
        .configure(|state| state.param(z0).max_iters(max_iterations))
        .run()
        .map_err(|e| Error::numerical("MAP (L-BFGS)", e.to_string()))?;
    let state = result.state();
    let y = state
        .get_best_param()
        .cloned()
        .ok_or_else(|| Error::numerical("MAP (L-BFGS)", "no iterate"))?;
    let m = Reduced { post, scale }.parameter(&y);
    let cost = post.cost(&m)?;
    let converged = matches!(
        state.get_termination_status(),
        argmin::core::TerminationStatus::Terminated(
            argmin::core::TerminationReason::SolverConverged
        )
    );
    Ok(MapResult {
        m,
        cost,
        converged,
        iterations: state.get_iter() as usize,
        history: Vec::new(),
        evaluations: post.evaluations() - before,
        incremental_solves: 0,
        wall_s: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::misfit::GaussianMisfit;
    use crate::problem::Problem;
    use crate::rng::{stream, Purpose};
    use crate::taylor::TaylorTest;

    /// The gradient in the scaled variable z (∂J/∂z = s A⁻¹ g) passes the Taylor test.
    #[test]
    fn reduced_gradient_passes_the_taylor_test() {
        let problem = Problem::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/problems/poisson.toml"
        ))
        .unwrap()
        .with_mesh(8)
        .unwrap();
        let prior = problem.prior().unwrap();
        let model = problem.model().unwrap();
        let q = model
            .evaluate(&prior.sample(&mut stream(1, Purpose::PriorSample, 0)))
            .unwrap();
        let post = Posterior::new(
            model.as_ref(),
            &prior,
            GaussianMisfit::new(q, 1e-4).unwrap(),
        )
        .unwrap();
        let reduced = Reduced {
            post: &post,
            scale: 0.3,
        };
        let m = prior.sample(&mut stream(2, Purpose::PriorSample, 0));
        let centred: Vec<f64> = m.iter().zip(prior.mean()).map(|(a, b)| a - b).collect();
        let z: Vec<f64> = prior.a_mul(&centred).iter().map(|v| v / 0.3).collect();
        let v: Vec<f64> = prior.a_mul(&prior.sample(&mut stream(3, Purpose::PriorSample, 0)));
        let g = reduced.gradient(&z).unwrap();
        let shifted = |e: f64| -> Vec<f64> { z.iter().zip(&v).map(|(a, b)| a + e * b).collect() };
        let t = TaylorTest::run_scalar(
            |e| reduced.cost(&shifted(e)).unwrap(),
            reduced.cost(&z).unwrap(),
            g.iter().zip(&v).map(|(a, b)| a * b).sum(),
            1e-2,
            6,
        );
        t.assert_second_order("L-BFGS reduced gradient", 0.1);
    }
}
