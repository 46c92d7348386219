//! The data misfit Φ(m) = ½ ‖q(m) − d‖²_{Γ⁻¹} = ½ (q − d)ᵀ Γ⁻¹ (q − d) of Gaussian noise
//! η ~ N(0, Γ) in d = q(m) + η, and its derivatives through a [`Linearization`] of q.
//!
//! [`Misfit`] is what the outer loops need of any misfit; [`GaussianMisfit`] implements it for
//! data d and a [`NoiseCovariance`] (isotropic σ² I, per-datum σᵢ², or a full SPD Γ).

pub mod noise;

pub use noise::NoiseCovariance;

use crate::error::{Error, Result};
use crate::map::Linearization;

/// A data misfit Φ(q) and its derivatives in m through the map's linearization.
pub trait Misfit: Send + Sync {
    /// The data d.
    fn data(&self) -> &[f64];
    /// Φ = ½ (q − d)ᵀ Γ⁻¹ (q − d).
    fn cost(&self, q: &[f64]) -> f64;
    /// The weighted residual w = ∂Φ/∂q = Γ⁻¹ (q − d).
    fn weighted_residual(&self, q: &[f64]) -> Vec<f64>;
    /// ∇Φ = Jᵀ Γ⁻¹ (q − d), a dual (ℓ²) vector over the parameter nodes.
    fn gradient(&self, lin: &dyn Linearization) -> Vec<f64> {
        lin.vjp(&self.weighted_residual(lin.output()))
    }
    /// Gauss–Newton Hessian action H_GN v = Jᵀ Γ⁻¹ J v (the Hessian without the
    /// second-derivative term Σ_k w_k ∇²q_k, exact where the residual vanishes).
    fn gauss_newton_hessian_action(&self, lin: &dyn Linearization, v: &[f64]) -> Vec<f64>;
    /// Full Hessian action H v = Jᵀ Γ⁻¹ J v + (Σ_k w_k ∇²q_k) v, when the map provides second
    /// derivatives ([`Linearization::second_order_action`]); `None` otherwise.
    fn hessian_action(&self, lin: &dyn Linearization, v: &[f64]) -> Option<Vec<f64>>;
}

/// The Gaussian misfit ½ (q − d)ᵀ Γ⁻¹ (q − d) for data `d` and noise covariance Γ.
#[derive(Debug, Clone)]
pub struct GaussianMisfit {
    data: Vec<f64>,
    noise: NoiseCovariance,
}

impl GaussianMisfit {
    /// A misfit for `data` with isotropic noise Γ = σ² I, σ² > 0.
    pub fn new(data: Vec<f64>, noise_variance: f64) -> Result<Self> {
        Self::with_noise(data, NoiseCovariance::isotropic(noise_variance)?)
    }

    /// A misfit for `data` with noise covariance `noise`, which must be defined for as many
    /// data (a diagonal or full Γ of another size is an error).
    pub fn with_noise(data: Vec<f64>, noise: NoiseCovariance) -> Result<Self> {
        if let Some(n) = noise.dim().filter(|&n| n != data.len()) {
            return Err(Error::invalid(
                "misfit",
                "noise covariance",
                format!("one noise variance per datum ({})", data.len()),
                format!("a covariance of {n} data"),
            ));
        }
        Ok(GaussianMisfit { data, noise })
    }

    /// Γ.
    pub fn noise(&self) -> &NoiseCovariance {
        &self.noise
    }
}

impl Misfit for GaussianMisfit {
    fn data(&self) -> &[f64] {
        &self.data
    }

    fn cost(&self, q: &[f64]) -> f64 {
        let r: Vec<f64> = q.iter().zip(&self.data).map(|(q, d)| q - d).collect();
        match &self.noise {
            // the isotropic sum as before: Σ r² / σ² (bit for bit)
            NoiseCovariance::Isotropic { variance } => {
                0.5 * r.iter().map(|r| r.powi(2)).sum::<f64>() / variance
            }
            noise => {
                0.5 * r
                    .iter()
                    .zip(noise.precision_mul(&r))
                    .map(|(a, b)| a * b)
                    .sum::<f64>()
            }
        }
    }

    fn weighted_residual(&self, q: &[f64]) -> Vec<f64> {
        let r: Vec<f64> = q.iter().zip(&self.data).map(|(q, d)| q - d).collect();
        self.noise.precision_mul(&r)
    }

    fn gauss_newton_hessian_action(&self, lin: &dyn Linearization, v: &[f64]) -> Vec<f64> {
        lin.vjp(&self.noise.precision_mul(&lin.jvp(v)))
    }

    fn hessian_action(&self, lin: &dyn Linearization, v: &[f64]) -> Option<Vec<f64>> {
        let precision = |r: &[f64]| self.noise.precision_mul(r);
        lin.misfit_hessian_action(&self.weighted_residual(lin.output()), &precision, v)
    }
}
