//! One optimization-under-uncertainty solve: bind the SAA samples, initialize t for CVaR at the
//! α-quantile of Q(z₀, ·), and run the projected L-BFGS on (z, t).

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::bounded_lbfgs::{minimize_bounded, BoundedIteration, BoundedLbfgsSettings, BoundedStop};
use super::qoi::ControlQoi;
use super::risk::{sample_cvar, sample_quantile, RiskMeasure};
use super::saa::{SaaObjective, SampleFailure};
use crate::error::Result;

/// What to minimize and how.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct OuuSettings {
    pub risk: RiskMeasure,
    /// γ of the control cost (γ/2)‖z‖².
    pub control_cost: f64,
    /// Box bounds of every control.
    pub bounds: [f64; 2],
    pub optimizer: BoundedLbfgsSettings,
}

/// The optimum and how it was reached.
#[derive(Debug, Clone, Serialize)]
pub struct OuuSolution {
    pub z: Vec<f64>,
    /// The CVaR auxiliary variable (None for the other risk measures).
    pub t: Option<f64>,
    /// The (smoothed) SAA objective at the optimum.
    pub objective: f64,
    /// Q(z*, m_i) on the SAA samples.
    pub qoi: Vec<f64>,
    pub iterations: usize,
    /// Objective evaluations (each N per-sample QoI + gradient evaluations).
    pub evaluations: usize,
    pub stop: BoundedStop,
    pub history: Vec<BoundedIteration>,
    /// Sample evaluations that failed on the way (treated as insufficient decrease).
    pub failures: Vec<SampleFailure>,
    pub wall_s: f64,
}

/// Statistics of Q over samples: mean, standard deviation, VaR_α and exact sample CVaR_α.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct QoiStatistics {
    pub samples: usize,
    pub mean: f64,
    pub std: f64,
    pub alpha: f64,
    pub var_alpha: f64,
    pub cvar_alpha: f64,
}

impl QoiStatistics {
    pub fn of(values: &[f64], alpha: f64) -> Self {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.iter().map(|q| (q - mean).powi(2)).sum::<f64>() / n).sqrt();
        QoiStatistics {
            samples: values.len(),
            mean,
            std,
            alpha,
            var_alpha: sample_quantile(values, alpha),
            cvar_alpha: sample_cvar(values, alpha),
        }
    }

    /// The risk measure's value with exact (unsmoothed) CVaR.
    pub fn risk(&self, risk: RiskMeasure) -> f64 {
        match risk {
            RiskMeasure::Mean => self.mean,
            RiskMeasure::MeanVariance { beta } => self.mean + beta * self.std * self.std,
            RiskMeasure::Cvar { .. } => self.cvar_alpha,
        }
    }
}

/// Minimizes the SAA risk of `qoi` over `samples` from z₀.
pub fn solve_ouu(
    qoi: &dyn ControlQoi,
    samples: &[Vec<f64>],
    z0: &[f64],
    settings: &OuuSettings,
    label: &str,
    progress: bool,
) -> Result<OuuSolution> {
    let start = Instant::now();
    let n_z = qoi.control_dim();
    let bound = qoi.bind(samples)?;
    let objective = SaaObjective::new(bound, n_z, settings.risk, settings.control_cost);
    let mut x0 = z0.to_vec();
    let mut lower = vec![settings.bounds[0]; n_z];
    let mut upper = vec![settings.bounds[1]; n_z];
    if let RiskMeasure::Cvar { alpha, .. } = settings.risk {
        let q: Vec<f64> = objective
            .sample_values(z0)?
            .into_iter()
            .map(|(q, _)| q)
            .collect();
        x0.push(sample_quantile(&q, alpha));
        lower.push(f64::NEG_INFINITY);
        upper.push(f64::INFINITY);
    }
    let bar = if progress {
        ProgressBar::new(settings.optimizer.max_iterations as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} iterations {msg}",
        )
        .expect("valid template"),
    );
    bar.set_prefix(label.to_string());
    // Q_i at the last successful evaluation: usually the optimum, whose values are then not
    // computed again
    let mut last: Option<(Vec<f64>, Vec<f64>)> = None;
    let result = minimize_bounded(
        &x0,
        &lower,
        &upper,
        &settings.optimizer,
        |x| {
            objective.evaluate(x).map(|e| {
                last = Some((x.to_vec(), e.qoi));
                (e.value, e.gradient)
            })
        },
        |it| {
            bar.set_position(it.iteration as u64);
            bar.set_message(format!(
                "J = {:.6e}, ‖Pg‖∞ = {:.2e}",
                it.value, it.projected_gradient
            ));
        },
    )?;
    bar.finish_and_clear();
    let z = result.x[..n_z].to_vec();
    let t = settings.risk.has_auxiliary().then(|| result.x[n_z]);
    let qoi = match last {
        Some((x, qoi)) if x == result.x => qoi,
        _ => objective
            .sample_values(&z)?
            .into_iter()
            .map(|(q, _)| q)
            .collect(),
    };
    Ok(OuuSolution {
        z,
        t,
        objective: result.value,
        qoi,
        iterations: result.iterations,
        evaluations: objective.evaluations(),
        stop: result.stop,
        history: result.history,
        failures: result.failures,
        wall_s: start.elapsed().as_secs_f64(),
    })
}
