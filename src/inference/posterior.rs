//! The Bayesian posterior of hIPPYlib's split: prior × likelihood, over any differentiable map.
//!
//!   −log π(m | d) = ½ ‖m − m̄‖²_R + Φ(m) + const,   Φ(m) = ½ ‖q(m) − d‖²_{Γ⁻¹},  Γ = σ² I,
//!
//! with R = C⁻¹ the BiLaplacian prior precision. The map is the PDE or a surrogate: the
//! algorithms on top never know which.

use crate::misfit::Misfit;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};
use crate::map::{DifferentiableMap, Linearization};
use crate::misfit::GaussianMisfit;
use crate::prior::BiLaplacianPrior;
use crate::rng::{stream, Purpose};

/// Prior, likelihood and the map between them; counts map evaluations.
pub struct Posterior<'a> {
    pub map: &'a dyn DifferentiableMap,
    pub prior: &'a BiLaplacianPrior,
    pub misfit: GaussianMisfit,
    evaluations: AtomicUsize,
}

/// The negative log posterior and its parts at one parameter.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Cost {
    pub total: f64,
    pub prior: f64,
    pub misfit: f64,
}

/// The posterior linearized at m: cost, gradient g = R(m − m̄) + Jᵀ Γ⁻¹ (q − d) (a dual
/// vector), and the Gauss–Newton Hessian action.
pub struct PosteriorPoint<'p> {
    pub lin: Box<dyn Linearization + 'p>,
    pub cost: Cost,
    pub gradient: Vec<f64>,
}

impl<'a> Posterior<'a> {
    /// A posterior; the data must have the map's output length.
    pub fn new(
        map: &'a dyn DifferentiableMap,
        prior: &'a BiLaplacianPrior,
        misfit: GaussianMisfit,
    ) -> Result<Self> {
        if misfit.data().len() != map.output_dim() {
            return Err(Error::invalid(
                "data",
                "length",
                format!("{} observations (the map's output)", map.output_dim()),
                misfit.data().len(),
            ));
        }
        if prior.dim() != map.input_dim() {
            return Err(Error::invalid(
                "prior",
                "dimension",
                format!("{} parameters (the map's input)", map.input_dim()),
                prior.dim(),
            ));
        }
        Ok(Posterior {
            map,
            prior,
            misfit,
            evaluations: AtomicUsize::new(0),
        })
    }

    /// Number of map evaluations (forward solves or surrogate calls) so far.
    pub fn evaluations(&self) -> usize {
        self.evaluations.load(Ordering::Relaxed)
    }

    /// q(m) (one map evaluation).
    pub fn observe(&self, m: &[f64]) -> Result<Vec<f64>> {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        self.map.evaluate(m)
    }

    /// q(m), Φ(m) and ∇Φ(m) = Jᵀ Γ⁻¹ (q − d) (one map evaluation and one adjoint).
    pub fn misfit_with_gradient(&self, m: &[f64]) -> Result<(Vec<f64>, f64, Vec<f64>)> {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        let lin = self.map.linearize(m)?;
        let g = self.misfit.gradient(lin.as_ref());
        Ok((lin.output().to_vec(), self.misfit.cost(lin.output()), g))
    }

    /// The map linearized at m (one map evaluation).
    pub fn linearize_map(&self, m: &[f64]) -> Result<Box<dyn Linearization + 'a>> {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        self.map.linearize(m)
    }

    /// Φ(m) (one map evaluation).
    pub fn misfit_cost(&self, m: &[f64]) -> Result<f64> {
        Ok(self.misfit.cost(&self.observe(m)?))
    }

    /// −log π(m | d) and its parts (one map evaluation).
    pub fn cost(&self, m: &[f64]) -> Result<Cost> {
        let misfit = self.misfit_cost(m)?;
        let prior = self.prior.cost(m);
        Ok(Cost {
            total: prior + misfit,
            prior,
            misfit,
        })
    }

    /// Cost and gradient at m, keeping the linearization for Hessian actions.
    pub fn linearize(&self, m: &[f64]) -> Result<PosteriorPoint<'a>> {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        let lin = self.map.linearize(m)?;
        let misfit = self.misfit.cost(lin.output());
        let prior = self.prior.cost(m);
        let mut gradient = self.prior.gradient(m);
        for (g, v) in gradient.iter_mut().zip(self.misfit.gradient(lin.as_ref())) {
            *g += v;
        }
        Ok(PosteriorPoint {
            lin,
            cost: Cost {
                total: prior + misfit,
                prior,
                misfit,
            },
            gradient,
        })
    }
}

impl PosteriorPoint<'_> {
    /// H v = R v + Jᵀ Γ⁻¹ J v (Gauss–Newton).
    pub fn hessian_action(&self, post: &Posterior<'_>, v: &[f64]) -> Vec<f64> {
        self.add_prior(
            post,
            v,
            post.misfit
                .gauss_newton_hessian_action(self.lin.as_ref(), v),
        )
    }

    /// The full Hessian action H v = R v + Jᵀ Γ⁻¹ J v + (Σ_k [Γ⁻¹(q − d)]_k ∇²q_k) v, when the
    /// map provides second derivatives; `None` otherwise.
    pub fn newton_hessian_action(&self, post: &Posterior<'_>, v: &[f64]) -> Option<Vec<f64>> {
        let misfit = post.misfit.hessian_action(self.lin.as_ref(), v)?;
        Some(self.add_prior(post, v, misfit))
    }

    fn add_prior(&self, post: &Posterior<'_>, v: &[f64], misfit: Vec<f64>) -> Vec<f64> {
        let mut h = post.prior.precision_mul(v);
        h.iter_mut().zip(misfit).for_each(|(a, b)| *a += b);
        h
    }
}

/// Synthetic data d = q(m_true) + η, η ~ N(0, σ² I) with σ = `relative_noise` · max |q(m_true)|
/// (noise drawn from the stream (seed, noise, 0)). Returns (d, σ).
pub fn synthetic_data(
    map: &dyn DifferentiableMap,
    m_true: &[f64],
    relative_noise: f64,
    seed: u64,
) -> Result<(Vec<f64>, f64)> {
    if !(relative_noise > 0.0 && relative_noise.is_finite()) {
        return Err(Error::invalid(
            "noise",
            "relative",
            "a positive number (σ = relative · max |q|)",
            relative_noise,
        ));
    }
    use rand::Rng;
    let q = map.evaluate(m_true)?;
    let sigma = relative_noise * q.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let mut rng = stream(seed, Purpose::Noise, 0);
    let d = q
        .iter()
        .map(|v| v + sigma * rng.sample::<f64, _>(rand_distr::StandardNormal))
        .collect();
    Ok((d, sigma))
}

/// ⟨a, b⟩
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// a + s b
pub fn axpy(a: &[f64], s: f64, b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + s * y).collect()
}
