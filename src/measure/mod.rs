//! Gaussian measures on nodal parameter fields (hIPPYlib's `prior.py` abstractions): the
//! BiLaplacian prior N(m̄, C) and the low-rank Laplace approximation of a posterior
//! N(m_MAP, (R + H)⁻¹), behind one trait, so that whatever draws parameters (e.g. `dino generate`)
//! needs only a measure, not the inference code that computed it.
//!
//! Inner products, as in [`crate::prior`]: a sample and the mean are nodal vectors; the covariance
//! maps a dual vector (ℓ² pairing with nodal vectors) to a nodal one, the precision a nodal vector
//! to a dual one.

pub mod bilaplacian;
pub mod laplace;

use rand::RngCore;

pub use bilaplacian::prior_pointwise_variance;
pub use laplace::{Laplace, LaplaceMeasure, LaplaceRecord, LAPLACE_FORMAT};

/// A Gaussian measure N(m̄, Γ) on ℝ^{d_M} (nodal values of a P1 field).
pub trait GaussianMeasure {
    /// d_M, the number of nodal values.
    fn dim(&self) -> usize;

    /// The mean m̄ (nodal).
    fn mean(&self) -> &[f64];

    /// A draw m ~ N(m̄, Γ) with `rng` (the same random numbers, in the same order, as the
    /// measure's own inherent sampler).
    fn sample(&self, rng: &mut dyn RngCore) -> Vec<f64>;

    /// Γ b for a dual vector b (result nodal).
    fn covariance_mul(&self, b: &[f64]) -> Vec<f64>;

    /// Γ⁻¹ x for a nodal vector x (result dual), where the measure has it in closed form.
    fn precision_mul(&self, x: &[f64]) -> Option<Vec<f64>>;

    /// The pointwise variance diag(Γ) (nodal).
    fn pointwise_variance(&self) -> Vec<f64>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fem::Mesh;
    use crate::prior::{BiLaplacianParams, BiLaplacianPrior, Mean};
    use crate::rng::{stream, Purpose};

    fn prior() -> BiLaplacianPrior {
        let params = BiLaplacianParams {
            gamma: 0.1,
            delta: 0.5,
            anisotropy: Some((2.0, 0.5, 0.7)),
            robin: true,
            mean: Mean::Constant(0.3),
        };
        BiLaplacianPrior::new(&Mesh::unit_square(4), params).unwrap()
    }

    /// A rank-one approximation with an R-normalized vector, vᵀ R v = 1.
    fn laplace(prior: &BiLaplacianPrior) -> Laplace {
        let n = prior.dim();
        let v: Vec<f64> = (0..n).map(|i| (0.7 * i as f64).sin()).collect();
        let norm: f64 = v
            .iter()
            .zip(prior.precision_mul(&v))
            .map(|(a, b)| a * b)
            .sum::<f64>()
            .sqrt();
        Laplace {
            mean: (0..n).map(|i| 0.01 * i as f64).collect(),
            eigenvalues: ndarray::arr1(&[3.0]),
            vectors: ndarray::Array2::from_shape_fn((n, 1), |(k, _)| v[k] / norm),
        }
    }

    #[test]
    fn trait_samples_are_the_inherent_samples() {
        let prior = prior();
        let lap = laplace(&prior);
        let measure: &dyn GaussianMeasure = &prior;
        let a = measure.sample(&mut stream(7, Purpose::PriorSample, 2));
        let b = prior.sample(&mut stream(7, Purpose::PriorSample, 2));
        assert_eq!(a, b);
        let post = lap.measure(&prior);
        let a = GaussianMeasure::sample(&post, &mut stream(7, Purpose::PriorSample, 3));
        let b = lap.sample(&prior, &mut stream(7, Purpose::PriorSample, 3));
        assert_eq!(a, b);
        assert_eq!(GaussianMeasure::mean(&post), &lap.mean[..]);
    }

    #[test]
    fn laplace_covariance_inverts_its_precision() {
        let prior = prior();
        let lap = laplace(&prior);
        let post = lap.measure(&prior);
        let x: Vec<f64> = (0..prior.dim()).map(|i| (0.3 * i as f64).cos()).collect();
        let y = post.covariance_mul(&post.precision_mul(&x).unwrap());
        let err = x
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-10, "{err}");
    }

    #[test]
    fn pointwise_variance_is_the_diagonal_of_the_covariance() {
        let prior = prior();
        let lap = laplace(&prior);
        let post = lap.measure(&prior);
        let var = post.pointwise_variance();
        for k in [0, 5, prior.dim() - 1] {
            let mut e = vec![0.0; prior.dim()];
            e[k] = 1.0;
            let ck = post.covariance_mul(&e)[k];
            assert!(
                (ck - var[k]).abs() < 1e-12 * ck.abs().max(1e-3),
                "{ck} vs {}",
                var[k]
            );
        }
    }
}
