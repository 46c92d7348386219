//! The sample average approximation of a risk-averse control objective.
//!
//! With N fixed parameter samples m_i and Q_i(z) = Q(z, m_i), the objective in x = z (or x = (z, t)
//! for CVaR) is, with an optional control cost (γ/2)‖z‖²,
//! - mean:     J = (1/N) Σ Q_i,                      ∇_z J = (1/N) Σ ∇Q_i;
//! - meanvar:  J = Q̄ + β (1/N) Σ (Q_i − Q̄)²,        ∇_z J = (1/N) Σ (1 + 2β (Q_i − Q̄)) ∇Q_i;
//! - CVaR:     J = t + Σ s_ε(Q_i − t) / ((1 − α) N),
//!   ∇_z J = Σ s_ε'(Q_i − t) ∇Q_i / ((1 − α) N),  ∂_t J = 1 − Σ s_ε'(Q_i − t) / ((1 − α) N).
//!
//! The model evaluates the samples (the PDE in parallel, one forward + adjoint pair each; a
//! surrogate in one batched pass).

use std::sync::atomic::{AtomicUsize, Ordering};

use super::qoi::SampledQoi;
use super::risk::{RiskMeasure, SmoothPlus};
use crate::error::Error;

/// A sample whose model evaluation failed: which one, at which control, and why.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SampleFailure {
    pub sample: usize,
    pub reason: String,
}

impl std::fmt::Display for SampleFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sample {}: {}", self.sample, self.reason)
    }
}

/// One evaluation of the objective.
#[derive(Debug, Clone)]
pub struct SaaEvaluation {
    pub value: f64,
    /// ∇_x J (length n_z, or n_z + 1 with t last).
    pub gradient: Vec<f64>,
    /// Q_i at this control.
    pub qoi: Vec<f64>,
}

/// J(x) over fixed samples.
pub struct SaaObjective<'a> {
    samples: Box<dyn SampledQoi + 'a>,
    control_dim: usize,
    risk: RiskMeasure,
    /// γ of the control cost (γ/2)‖z‖².
    control_cost: f64,
    evaluations: AtomicUsize,
}

impl<'a> SaaObjective<'a> {
    /// The objective over bound samples.
    pub fn new(
        samples: Box<dyn SampledQoi + 'a>,
        control_dim: usize,
        risk: RiskMeasure,
        control_cost: f64,
    ) -> Self {
        SaaObjective {
            samples,
            control_dim,
            risk,
            control_cost,
            evaluations: AtomicUsize::new(0),
        }
    }

    /// Number of optimization variables: n_z, plus t for CVaR.
    pub fn dim(&self) -> usize {
        self.control_dim + usize::from(self.risk.has_auxiliary())
    }

    /// N
    pub fn sample_count(&self) -> usize {
        self.samples.len()
    }

    /// Evaluations of all N samples so far (objective evaluations and direct `sample_values`).
    pub fn evaluations(&self) -> usize {
        self.evaluations.load(Ordering::Relaxed)
    }

    /// Q_i(z) and ∇Q_i(z) for every sample, in parallel; the first failure is returned.
    pub fn sample_values(&self, z: &[f64]) -> Result<Vec<(f64, Vec<f64>)>, SampleFailure> {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        self.samples
            .values_and_gradients(z)
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let (q, g) = r.map_err(|e| SampleFailure {
                    sample: i,
                    reason: e.to_string(),
                })?;
                if q.is_finite() && g.iter().all(|v| v.is_finite()) {
                    Ok((q, g))
                } else {
                    Err(SampleFailure {
                        sample: i,
                        reason: format!("non-finite QoI or gradient (Q = {q})"),
                    })
                }
            })
            .collect()
    }

    /// J(x) and ∇J(x).
    pub fn evaluate(&self, x: &[f64]) -> Result<SaaEvaluation, SampleFailure> {
        assert_eq!(
            x.len(),
            self.dim(),
            "optimization variable of the wrong length"
        );
        let z = &x[..self.control_dim];
        let per_sample = self.sample_values(z)?;
        let n = per_sample.len() as f64;
        let qoi: Vec<f64> = per_sample.iter().map(|(q, _)| *q).collect();
        let mean = qoi.iter().sum::<f64>() / n;
        // J's risk part and the weight of each ∇Q_i in ∇_z J
        let (mut value, weights, dt) = match self.risk {
            RiskMeasure::Mean => (mean, vec![1.0 / n; qoi.len()], None),
            RiskMeasure::MeanVariance { beta } => {
                let var = qoi.iter().map(|q| (q - mean).powi(2)).sum::<f64>() / n;
                let w = qoi
                    .iter()
                    .map(|q| (1.0 + 2.0 * beta * (q - mean)) / n)
                    .collect();
                (mean + beta * var, w, None)
            }
            RiskMeasure::Cvar { alpha, epsilon } => {
                let t = x[self.control_dim];
                let s = SmoothPlus { epsilon };
                let scale = 1.0 / ((1.0 - alpha) * n);
                let value = t + scale * qoi.iter().map(|q| s.value(q - t)).sum::<f64>();
                let w: Vec<f64> = qoi.iter().map(|q| scale * s.derivative(q - t)).collect();
                let dt = 1.0 - w.iter().sum::<f64>();
                (value, w, Some(dt))
            }
        };
        let mut gradient: Vec<f64> = z.iter().map(|zk| self.control_cost * zk).collect();
        for ((_, g), w) in per_sample.iter().zip(&weights) {
            gradient.iter_mut().zip(g).for_each(|(a, b)| *a += w * b);
        }
        value += 0.5 * self.control_cost * z.iter().map(|v| v * v).sum::<f64>();
        gradient.extend(dt);
        Ok(SaaEvaluation {
            value,
            gradient,
            qoi,
        })
    }
}

impl From<SampleFailure> for Error {
    fn from(f: SampleFailure) -> Error {
        Error::numerical(
            format!(
                "optimization under uncertainty, parameter sample {}",
                f.sample
            ),
            f.reason,
        )
    }
}
