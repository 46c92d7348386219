//! Laplace approximation at the MAP point: N(m_MAP, Γ_post) with
//!   Γ_post = (R + H_misfit)⁻¹ ≈ C − V diag(λ/(1+λ)) Vᵀ,
//! where (λ_i, v_i) are the dominant eigenpairs of the prior-preconditioned Gauss–Newton Hessian,
//! H_misfit v = λ R v with Vᵀ R V = I (randomized double-pass generalized eigensolver).
//!
//! Samples: x = m_MAP + (I − V diag(1 − 1/√(1+λ)) Vᵀ R) s with s ~ N(0, C), whose covariance is
//! exactly C − V diag(λ/(1+λ)) Vᵀ. Pointwise variance: diag(C) − Σ_i λ_i/(1+λ_i) v_i².

use ndarray::{Array1, Array2};
use rand::Rng;

use super::posterior::{Posterior, PosteriorPoint};
use crate::bases::eigensolver::{columnwise, double_pass_generalized};
use crate::error::Result;
use crate::prior::BiLaplacianPrior;
use crate::rng::{stream, Purpose};

/// The low-rank Laplace approximation.
#[derive(Debug, Clone)]
pub struct Laplace {
    pub mean: Vec<f64>,
    /// λ_i, decreasing.
    pub eigenvalues: Array1<f64>,
    /// V (d_M × r), R-orthonormal.
    pub vectors: Array2<f64>,
}

impl Laplace {
    /// Eigenpairs of the GN misfit Hessian at `point` (the MAP) w.r.t. the prior precision.
    pub fn at(
        post: &Posterior<'_>,
        point: &PosteriorPoint<'_>,
        m_map: &[f64],
        rank: usize,
        oversampling: usize,
        seed: u64,
    ) -> Result<Laplace> {
        let n = post.prior.dim();
        let lin = point.lin.as_ref();
        let h =
            |x: &Array2<f64>| columnwise(x, |v| post.misfit.gauss_newton_hessian_action(lin, v));
        let r = |x: &Array2<f64>| columnwise(x, |v| post.prior.precision_mul(v));
        let c = |x: &Array2<f64>| columnwise(x, |v| post.prior.covariance_mul(v));
        let pairs = double_pass_generalized(
            n,
            &h,
            &r,
            &c,
            rank.min(n),
            oversampling,
            &mut stream(seed, Purpose::Sketch, 1),
        );
        Ok(Laplace {
            mean: m_map.to_vec(),
            eigenvalues: pairs.values.mapv(|l| l.max(0.0)),
            vectors: pairs.vectors,
        })
    }

    /// Coefficients Vᵀ R x.
    pub fn coefficients(&self, prior: &BiLaplacianPrior, x: &[f64]) -> Array1<f64> {
        crate::linalg::transpose_mul(&self.vectors, Array1::from(prior.precision_mul(x)).view())
    }

    /// (I − V diag(1 − 1/√(1+λ)) Vᵀ R) s: maps an N(0, C) sample to an N(0, Γ_post) one.
    pub fn transform_prior_sample(&self, prior: &BiLaplacianPrior, s: &[f64]) -> Vec<f64> {
        let c = self.coefficients(prior, s);
        let scaled = Array1::from_shape_fn(c.len(), |i| {
            c[i] * (1.0 - 1.0 / (1.0 + self.eigenvalues[i]).sqrt())
        });
        let shift = self.vectors.dot(&scaled);
        s.iter().zip(shift.iter()).map(|(a, b)| a - b).collect()
    }

    /// A zero-mean N(0, Γ_post) draw.
    pub fn sample_deviation(&self, prior: &BiLaplacianPrior, rng: &mut impl Rng) -> Vec<f64> {
        self.transform_prior_sample(prior, &prior.sample_deviation(rng))
    }

    /// A sample of N(m_MAP, Γ_post).
    pub fn sample(&self, prior: &BiLaplacianPrior, rng: &mut impl Rng) -> Vec<f64> {
        let d = self.sample_deviation(prior, rng);
        d.iter().zip(&self.mean).map(|(a, b)| a + b).collect()
    }

    /// Pointwise posterior variance diag(C) − Σ λ_i/(1+λ_i) v_i² (given diag(C)).
    pub fn pointwise_variance(&self, prior_variance: &[f64]) -> Vec<f64> {
        let mut var = prior_variance.to_vec();
        for (i, &l) in self.eigenvalues.iter().enumerate() {
            let w = l / (1.0 + l);
            for (k, v) in var.iter_mut().enumerate() {
                *v -= w * self.vectors[[k, i]].powi(2);
            }
        }
        var
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
