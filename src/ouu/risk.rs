//! Risk measures of a random quantity Q under sample average approximation.
//!
//! CVaR_α by Rockafellar–Uryasev: CVaR_α\[Q\] = min_t t + E[(Q − t)⁺]/(1 − α), with the plus
//! function replaced by SOUPy's C² quartic smoothing s_ε so that gradient-based optimizers apply.

use serde::{Deserialize, Serialize};

/// SOUPy's quartic smoothing of max(s, 0):
/// s_ε(s) = 0 for s < 0, s³/ε² − s⁴/(2ε³) on [0, ε), s − ε/2 for s ≥ ε (C², s_ε ≤ s⁺ ≤ s_ε + ε/2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SmoothPlus {
    pub epsilon: f64,
}

impl SmoothPlus {
    /// s_ε(s)
    pub fn value(self, s: f64) -> f64 {
        let e = self.epsilon;
        if s <= 0.0 {
            0.0
        } else if s < e {
            s.powi(3) / (e * e) - s.powi(4) / (2.0 * e.powi(3))
        } else {
            s - e / 2.0
        }
    }

    /// s_ε'(s) ∈ [0, 1]
    pub fn derivative(self, s: f64) -> f64 {
        let e = self.epsilon;
        if s <= 0.0 {
            0.0
        } else if s < e {
            3.0 * s * s / (e * e) - 2.0 * s.powi(3) / e.powi(3)
        } else {
            1.0
        }
    }
}

/// A risk measure R\[Q\].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RiskMeasure {
    /// E\[Q\]
    Mean,
    /// E\[Q\] + β Var\[Q\] (variance with the 1/N sample normalization)
    MeanVariance { beta: f64 },
    /// min_t t + E[s_ε(Q − t)]/(1 − α): the smoothed CVaR_α, with t an extra optimization variable
    Cvar { alpha: f64, epsilon: f64 },
}

impl RiskMeasure {
    /// True when the objective carries the auxiliary variable t.
    pub fn has_auxiliary(self) -> bool {
        matches!(self, RiskMeasure::Cvar { .. })
    }

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            RiskMeasure::Mean => "mean",
            RiskMeasure::MeanVariance { .. } => "meanvar",
            RiskMeasure::Cvar { .. } => "cvar",
        }
    }
}

/// The empirical α-quantile (value-at-risk): the smallest sample q with #{Q ≤ q}/N ≥ α.
pub fn sample_quantile(values: &[f64], alpha: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let k = ((alpha * n as f64).ceil() as usize).clamp(1, n) - 1;
    sorted[k]
}

/// The exact CVaR_α of the empirical distribution of `values`:
/// VaR_α + E[(Q − VaR_α)⁺]/(1 − α) (the Rockafellar–Uryasev minimum over t, attained at VaR_α).
pub fn sample_cvar(values: &[f64], alpha: f64) -> f64 {
    let t = sample_quantile(values, alpha);
    let excess = values.iter().map(|q| (q - t).max(0.0)).sum::<f64>() / values.len() as f64;
    t + excess / (1.0 - alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_plus_is_c1_and_bounded_by_the_plus_function() {
        let s = SmoothPlus { epsilon: 0.1 };
        for &x in &[-0.5, 0.0, 0.01, 0.05, 0.0999, 0.1, 0.3] {
            let v = s.value(x);
            assert!(
                v <= x.max(0.0) + 1e-15 && v + 0.05 + 1e-15 >= x.max(0.0),
                "{x}"
            );
            let h = 1e-7;
            let fd = (s.value(x + h) - s.value(x - h)) / (2.0 * h);
            assert!(
                (fd - s.derivative(x)).abs() < 1e-5,
                "{x}: {fd} vs {}",
                s.derivative(x)
            );
        }
        // continuity of value and derivative at ε
        assert!((s.value(0.1 - 1e-12) - s.value(0.1)).abs() < 1e-10);
        assert!((s.derivative(0.1 - 1e-12) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn exact_cvar_of_a_uniform_grid() {
        // Q uniform on {1, …, 100}: CVaR_0.95 is the mean of the top 5 = 98
        let q: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(sample_quantile(&q, 0.95), 95.0);
        assert!((sample_cvar(&q, 0.95) - 98.0).abs() < 1e-12);
    }
}
