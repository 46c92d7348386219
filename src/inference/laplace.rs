//! Laplace approximation at the MAP point: N(m_MAP, Γ_post) with
//!   Γ_post = (R + H_misfit)⁻¹ ≈ C − V diag(λ/(1+λ)) Vᵀ,
//! where (λ_i, v_i) are the dominant eigenpairs of the prior-preconditioned Gauss–Newton Hessian,
//! H_misfit v = λ R v with Vᵀ R V = I (randomized double-pass generalized eigensolver).
//!
//! Samples: x = m_MAP + (I − V diag(1 − 1/√(1+λ)) Vᵀ R) s with s ~ N(0, C), whose covariance is
//! exactly C − V diag(λ/(1+λ)) Vᵀ. Pointwise variance: diag(C) − Σ_i λ_i/(1+λ_i) v_i².

use crate::misfit::Misfit;
use ndarray::Array2;

use super::posterior::{Posterior, PosteriorPoint};
use crate::error::Result;
use crate::linalg::eigen::{columnwise, double_pass_generalized};
use crate::rng::{stream, Purpose};

pub use crate::measure::laplace::{Laplace, LaplaceMeasure, LaplaceRecord, LAPLACE_FORMAT};
pub use crate::measure::prior_pointwise_variance;

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
}
