//! Gaussian data misfit Φ(m) = ½ ‖q(m) − d‖²_{Γ⁻¹} with Γ = σ² I, and its derivatives.

use crate::error::{Error, Result};
use crate::map::Linearization;

/// The misfit ½ (q − d)ᵀ Γ⁻¹ (q − d) for data `d` and noise covariance Γ = σ² I.
#[derive(Debug, Clone)]
pub struct GaussianMisfit {
    data: Vec<f64>,
    noise_variance: f64,
}

impl GaussianMisfit {
    /// A misfit for `data` with noise variance σ² > 0.
    pub fn new(data: Vec<f64>, noise_variance: f64) -> Result<Self> {
        if !(noise_variance > 0.0 && noise_variance.is_finite()) {
            return Err(Error::invalid(
                "misfit",
                "noise_variance",
                "a positive finite number",
                noise_variance,
            ));
        }
        Ok(GaussianMisfit {
            data,
            noise_variance,
        })
    }

    /// The data d.
    pub fn data(&self) -> &[f64] {
        &self.data
    }

    /// σ²
    pub fn noise_variance(&self) -> f64 {
        self.noise_variance
    }

    /// Γ⁻¹ (q − d)
    fn weighted_residual(&self, q: &[f64]) -> Vec<f64> {
        q.iter()
            .zip(&self.data)
            .map(|(q, d)| (q - d) / self.noise_variance)
            .collect()
    }

    /// Φ = ½ (q − d)ᵀ Γ⁻¹ (q − d)
    pub fn cost(&self, q: &[f64]) -> f64 {
        0.5 * q
            .iter()
            .zip(&self.data)
            .map(|(q, d)| (q - d).powi(2))
            .sum::<f64>()
            / self.noise_variance
    }

    /// ∇Φ = Jᵀ Γ⁻¹ (q − d), a dual (ℓ²) vector over the parameter nodes.
    pub fn gradient(&self, lin: &dyn Linearization) -> Vec<f64> {
        lin.vjp(&self.weighted_residual(lin.output()))
    }

    /// Gauss–Newton Hessian action H_GN v = Jᵀ Γ⁻¹ J v (the Hessian without the
    /// second-derivative term Σ_k r_k ∇²q_k, exact where the residual vanishes).
    pub fn gauss_newton_hessian_action(&self, lin: &dyn Linearization, v: &[f64]) -> Vec<f64> {
        let jv: Vec<f64> = lin.jvp(v).iter().map(|x| x / self.noise_variance).collect();
        lin.vjp(&jv)
    }

    /// Full Hessian action H v = Jᵀ Γ⁻¹ J v + (Σ_k [Γ⁻¹(q − d)]_k ∇²q_k) v, when the map
    /// provides second derivatives ([`Linearization::second_order_action`]); `None` otherwise.
    pub fn hessian_action(&self, lin: &dyn Linearization, v: &[f64]) -> Option<Vec<f64>> {
        lin.misfit_hessian_action(
            &self.weighted_residual(lin.output()),
            self.noise_variance,
            v,
        )
    }
}
