//! The Laplace terms every step needs, with one R application per state: with d = m − m_MAP,
//! δ = m_MAP − m̄ and c = Vᵀ R d (V the Laplace eigenvectors, R = C⁻¹),
//!   η's reference part = ½‖m − m̄‖²_R − ½‖m − m_MAP‖²_R − ½ Σ λ_i c_i²
//!                      = dᵀ R δ + ½ δᵀ R δ − ½ Σ λ_i c_i²,
//! (the density of the prior against the Laplace Gaussian N(m_MAP, Γ_post), gpCN and DA), and
//! the QoI coefficients c_1..c_k of the chain's trace.

use ndarray::Array1;

use super::Target;

/// δ-terms of the Laplace reference: R δ and δᵀ R δ.
pub(super) struct LaplaceTerms {
    pub r_delta: Vec<f64>,
    delta_r_delta: f64,
}

impl LaplaceTerms {
    pub(super) fn new(target: &Target<'_>) -> Self {
        let prior = target.exact.prior;
        let delta: Vec<f64> = target
            .laplace
            .mean
            .iter()
            .zip(prior.mean())
            .map(|(a, b)| a - b)
            .collect();
        let r_delta = prior.precision_mul(&delta);
        let delta_r_delta = delta.iter().zip(&r_delta).map(|(a, b)| a * b).sum();
        LaplaceTerms {
            r_delta,
            delta_r_delta,
        }
    }

    /// d = m − m_MAP and c = Vᵀ R d.
    pub(super) fn coordinates(&self, target: &Target<'_>, m: &[f64]) -> (Vec<f64>, Array1<f64>) {
        let lap = target.laplace;
        let d: Vec<f64> = m.iter().zip(&lap.mean).map(|(a, b)| a - b).collect();
        let c = crate::linalg::transpose_mul(
            &lap.vectors,
            Array1::from(target.exact.prior.precision_mul(&d)).view(),
        );
        (d, c)
    }

    /// η's reference part dᵀ R δ + ½ δᵀ R δ − ½ Σ λ_i c_i² at m.
    pub(super) fn reference(&self, target: &Target<'_>, m: &[f64]) -> f64 {
        let (d, c) = self.coordinates(target, m);
        let low_rank: f64 = c
            .iter()
            .zip(target.laplace.eigenvalues.iter())
            .map(|(c, l)| l * c * c)
            .sum();
        d.iter().zip(&self.r_delta).map(|(a, b)| a * b).sum::<f64>() + 0.5 * self.delta_r_delta
            - 0.5 * low_rank
    }
}

/// The QoI coefficients c_1..c_k = Vᵀ R (m − m_MAP) of the trace.
pub(super) struct QoiCoefficients {
    terms: LaplaceTerms,
    k: usize,
    /// Vᵀ R (m_MAP − m̄) when the kernels' subspace is the Laplace one: then the coefficients
    /// are the subspace coordinates shifted, Vᵀ R (y − m_MAP) = c_y − Vᵀ R (m_MAP − m̄), and no
    /// R application is needed.
    c_map: Option<Array1<f64>>,
}

impl QoiCoefficients {
    pub(super) fn new(target: &Target<'_>, k: usize) -> Self {
        let terms = LaplaceTerms::new(target);
        let c_map = target.subspace.is_none().then(|| {
            crate::linalg::transpose_mul(
                &target.laplace.vectors,
                Array1::from(terms.r_delta.clone()).view(),
            )
        });
        QoiCoefficients { terms, k, c_map }
    }

    /// The coefficients at m, from its subspace coordinates when the kernel gave them.
    pub(super) fn at(
        &self,
        target: &Target<'_>,
        m: &[f64],
        coordinates: Option<&Array1<f64>>,
    ) -> Vec<f64> {
        match (coordinates, &self.c_map) {
            (Some(c_y), Some(c_map)) => (c_y - c_map).iter().take(self.k).copied().collect(),
            _ => {
                let (_, c) = self.terms.coordinates(target, m);
                c.iter().take(self.k).copied().collect()
            }
        }
    }
}
