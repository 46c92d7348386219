//! The BiLaplacian prior ([`crate::prior::BiLaplacianPrior`]) as a [`GaussianMeasure`]:
//! Γ = C = A⁻¹ M A⁻¹, Γ⁻¹ = R = A M⁻¹ A.

use rand::RngCore;

use super::GaussianMeasure;
use crate::prior::BiLaplacianPrior;

impl GaussianMeasure for BiLaplacianPrior {
    fn dim(&self) -> usize {
        BiLaplacianPrior::dim(self)
    }

    fn mean(&self) -> &[f64] {
        BiLaplacianPrior::mean(self)
    }

    fn sample(&self, mut rng: &mut dyn RngCore) -> Vec<f64> {
        BiLaplacianPrior::sample(self, &mut rng)
    }

    fn covariance_mul(&self, b: &[f64]) -> Vec<f64> {
        BiLaplacianPrior::covariance_mul(self, b)
    }

    fn precision_mul(&self, x: &[f64]) -> Option<Vec<f64>> {
        Some(BiLaplacianPrior::precision_mul(self, x))
    }

    fn pointwise_variance(&self) -> Vec<f64> {
        prior_pointwise_variance(self)
    }
}

/// diag(C) = diag(A⁻¹ M A⁻¹), exactly: (A⁻¹ e_k)ᵀ M (A⁻¹ e_k) for every node, in parallel.
pub fn prior_pointwise_variance(prior: &BiLaplacianPrior) -> Vec<f64> {
    use rayon::prelude::*;
    let n = prior.dim();
    (0..n)
        .into_par_iter()
        .map(|k| {
            let mut e = vec![0.0; n];
            e[k] = 1.0;
            let x = prior.a_solve(&e);
            x.iter().zip(prior.mass_mul(&x)).map(|(a, b)| a * b).sum()
        })
        .collect()
}
