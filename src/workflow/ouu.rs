//! The optimization-under-uncertainty workflow behind `dino ouu`: risk-averse optimal control
//!
//! min_{z ∈ [l, u]^{n_z}}  R[Q(z, ·)] + (γ/2)‖z‖²,
//!
//! with the risk R (mean, mean + β·variance, or the smoothed CVaR_α) replaced by its sample
//! average over N parameter samples m_i ~ prior (SAA), Q evaluated by the PDE or by a control
//! surrogate (MR-DINO), and the optimum minimized by projected L-BFGS. A surrogate optimum is
//! then checked with the PDE on fresh samples (and compared with the control of another run).
//!
//! [`run`] computes; it neither prints nor writes files: [`OuuOutcome`] serializes to the run's
//! report.json (and [`read_report`] reads one back), and its skipped fields carry what the plots
//! and the .vtu need.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fem::Mesh;
use crate::map::{ControlledMap, Linearization};
use crate::models::ControlledDiffusion;
use crate::nn::model_file::Architecture;
use crate::nn::{ControlSurrogate, Metrics, ModelRecord, Surrogate};
use crate::ouu::{
    solve_ouu, BoundedIteration, BoundedLbfgsSettings, BoundedStop, ControlQoi, OuuSettings,
    OuuSolution, QoiStatistics, RiskMeasure, SampleFailure, SampledQoi,
};
use crate::problem::Problem;
use crate::rng::{stream, Purpose};

/// The family of the risk measure R; its parameters are in [`OuuConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskKind {
    /// E\[Q\]
    Mean,
    /// E\[Q\] + β Var\[Q\]
    MeanVariance,
    /// CVaR_α\[Q\] (smoothed Rockafellar–Uryasev)
    Cvar,
}

/// What one OUU run does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OuuConfig {
    /// Optimize with this control surrogate's folder; `None`: with the PDE.
    pub surrogate: Option<PathBuf>,
    pub risk: RiskKind,
    /// CVaR level α ∈ (0, 1), also the level of the reported VaR/CVaR statistics.
    pub alpha: f64,
    /// Variance weight β ≥ 0 of the mean-variance risk.
    pub beta: f64,
    /// Smoothing ε > 0 of the CVaR plus function.
    pub epsilon: f64,
    /// Control cost γ ≥ 0: adds (γ/2)‖z‖².
    pub gamma: f64,
    /// SAA sample size N.
    pub samples: usize,
    /// Seed of the SAA samples and of the fresh check samples.
    pub seed: u64,
    pub max_iterations: usize,
    /// Stop when the projected gradient's ∞-norm is below this.
    pub gtol: f64,
    /// Stop when the relative objective decrease is below this.
    pub ftol: f64,
    /// Re-evaluate the optimum with the PDE on this many fresh samples (0: skip).
    pub fresh: usize,
    /// report.json of another run whose control is re-evaluated on the same fresh samples.
    pub reference: Option<PathBuf>,
    /// Start at this control (.npy) instead of z = 0 (or a surrogate's training-region centre).
    pub start: Option<PathBuf>,
    /// Also solve the risk-neutral (mean) problem for comparison.
    pub risk_neutral: bool,
}

/// One SAA optimum as reported.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SolutionSummary {
    pub z: Vec<f64>,
    /// The CVaR auxiliary variable t (VaR estimate), when the risk has one.
    pub t: Option<f64>,
    pub objective: f64,
    pub iterations: usize,
    pub evaluations: usize,
    pub stop: BoundedStop,
    pub wall_s: f64,
    pub failures: Vec<SampleFailure>,
}

impl From<&OuuSolution> for SolutionSummary {
    fn from(s: &OuuSolution) -> Self {
        SolutionSummary {
            z: s.z.clone(),
            t: s.t,
            objective: s.objective,
            iterations: s.iterations,
            evaluations: s.evaluations,
            stop: s.stop,
            wall_s: s.wall_s,
            failures: s.failures.clone(),
        }
    }
}

/// Statistics of Q on the SAA samples with the optimizing model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SaaStatistics {
    pub at_optimum: QoiStatistics,
    pub at_zero: QoiStatistics,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_risk_neutral: Option<QoiStatistics>,
}

/// Where the optimum lies relative to the control region a surrogate was trained on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingRegionReport {
    pub centre: Vec<f64>,
    pub radius: f64,
    pub optimum_components_outside: usize,
    pub optimum_max_distance_outside: f64,
}

/// The control surrogate that was optimized.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SurrogateReport {
    pub folder: Option<String>,
    pub architecture: Architecture,
    pub test_metrics: Option<Metrics>,
    pub data_wall_s: Option<f64>,
    pub training_wall_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_region: Option<TrainingRegionReport>,
}

/// Another run's control evaluated with the PDE on the same fresh samples.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReferenceCheck {
    pub report: Option<String>,
    pub model: String,
    pub at_optimum: QoiStatistics,
    pub risk_at_optimum: f64,
    /// (R_here − R_ref) / |R_ref|, both PDE-evaluated on the fresh samples.
    pub optimality_gap: f64,
    pub online_wall_s: f64,
    /// The reference's online time over this run's.
    pub online_speedup: Option<f64>,
}

/// Q with the PDE on fresh samples (indices from 2⁴⁰ on).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PdeCheck {
    pub samples: usize,
    pub at_optimum: QoiStatistics,
    pub risk_at_optimum: f64,
    pub at_zero: QoiStatistics,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_risk_neutral: Option<QoiStatistics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<ReferenceCheck>,
}

/// Everything a run found; serializes to its report.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OuuOutcome {
    pub problem: String,
    pub problem_hash: String,
    /// "PDE" or "surrogate FOLDER".
    pub model: String,
    pub risk: RiskMeasure,
    pub control_cost: f64,
    pub samples: usize,
    pub seed: u64,
    pub bounds: [f64; 2],
    pub optimizer: BoundedLbfgsSettings,
    /// Where the optimizer started.
    pub start: String,
    pub optimum: SolutionSummary,
    pub saa_statistics: SaaStatistics,
    pub online_wall_s: f64,
    pub history: Vec<BoundedIteration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surrogate: Option<SurrogateReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_neutral: Option<SolutionSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pde_check: Option<PdeCheck>,
    #[serde(skip)]
    pub values: QoiValues,
    #[serde(skip)]
    pub fields: Option<OptimumFields>,
}

/// The risk measure of a configuration, its parameters and the sample size checked.
pub fn validate(config: &OuuConfig) -> Result<RiskMeasure> {
    let risk = risk_measure(config)?;
    if config.samples == 0 {
        let e = Error::invalid("command line", "--samples", "a positive integer", 0);
        return Err(e);
    }
    Ok(risk)
}

/// The risk measure of a configuration, with its parameters checked.
pub fn risk_measure(config: &OuuConfig) -> Result<RiskMeasure> {
    let bad = |field: &str, expected: &str, v: f64| {
        Err(Error::invalid("command line", field, expected, v))
    };
    if !(config.gamma >= 0.0 && config.gamma.is_finite()) {
        return bad("--gamma", "a non-negative number", config.gamma);
    }
    // α is also the level of the reported VaR/CVaR statistics for every risk measure
    if !(config.alpha > 0.0 && config.alpha < 1.0) {
        return bad("--alpha", "a level in (0, 1)", config.alpha);
    }
    Ok(match config.risk {
        RiskKind::Mean => RiskMeasure::Mean,
        RiskKind::MeanVariance => {
            if !(config.beta >= 0.0 && config.beta.is_finite()) {
                return bad("--beta", "a non-negative number", config.beta);
            }
            RiskMeasure::MeanVariance { beta: config.beta }
        }
        RiskKind::Cvar => {
            if !(config.epsilon > 0.0 && config.epsilon.is_finite()) {
                return bad("--epsilon", "a positive number", config.epsilon);
            }
            RiskMeasure::Cvar {
                alpha: config.alpha,
                epsilon: config.epsilon,
            }
        }
    })
}

/// The control surrogate in a model folder, refused when it has no control input or was trained
/// for another problem.
fn load_control_surrogate(
    dir: &Path,
    problem: &Problem,
    pde: &ControlledDiffusion,
) -> Result<(ControlSurrogate, ModelRecord)> {
    let s = Surrogate::load(dir)?;
    if s.record.problem.control_dim.is_none() {
        return Err(Error::invalid(
            dir.join("model.json").display().to_string(),
            "problem.control_dim",
            "a surrogate with a control input (trained with `dino train --control-data`)",
            "a surrogate of m ↦ q without a control input",
        ));
    }
    s.check_problem(problem, dir)?;
    Ok((ControlSurrogate::new(s.net, pde)?, s.record))
}

/// Parameter sample i of the SAA (fresh check samples use indices from 2⁴⁰ on).
fn parameter_samples(
    problem: &Problem,
    seed: u64,
    range: std::ops::Range<u64>,
) -> Result<Vec<Vec<f64>>> {
    let prior = problem.prior()?;
    Ok(range
        .into_par_iter()
        .map(|i| prior.sample(&mut stream(seed, Purpose::OuuSample, i)))
        .collect())
}

const FRESH_OFFSET: u64 = 1 << 40;

/// Q(z, m_j) with the PDE on bound fresh samples; a failed solve is an error naming the sample.
fn pde_values(fresh: &dyn SampledQoi, z: &[f64]) -> Result<Vec<f64>> {
    fresh
        .values(z)
        .into_iter()
        .enumerate()
        .map(|(j, r)| {
            r.map_err(|e| Error::numerical(format!("PDE check, fresh sample {j}"), e.to_string()))
        })
        .collect()
}

/// Reads another run's report.json.
pub fn read_report(path: &Path) -> Result<OuuOutcome> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::parse(path, format!("not a `dino ouu` report.json: {e}")))
}

/// The reference run's report, its control checked against this problem's control.
fn reference_report(path: &Path, n_z: usize, bounds: [f64; 2]) -> Result<OuuOutcome> {
    let report = read_report(path)?;
    let what = path.display().to_string();
    crate::models::controlled::check_control(&report.optimum.z, n_z, bounds, &what)?;
    Ok(report)
}

/// The optimizer's start: `--start`, else a surrogate's training-region centre, else z = 0.
fn start_control(
    config: &OuuConfig,
    record: Option<&ModelRecord>,
    n_z: usize,
    bounds: [f64; 2],
) -> Result<(Vec<f64>, String)> {
    // a surrogate trained around a control is valid near it, not necessarily at z = 0
    let region = record
        .and_then(|r| r.training.as_ref())
        .and_then(|t| t.control_region.as_ref());
    Ok(match (&config.start, region) {
        (Some(path), _) => {
            let z = crate::io::npy::read_vector(path, n_z, "--start")?;
            crate::models::controlled::check_control(&z, n_z, bounds, &path.display().to_string())?;
            (z, path.display().to_string())
        }
        (None, Some(r)) => (
            r.centre.clone(),
            "the surrogate's training-region centre".into(),
        ),
        (None, None) => (vec![0.0; n_z], "z = 0".into()),
    })
}

/// The surrogate's record as reported, with where the optimum `z` lies relative to its
/// training region.
fn surrogate_report(
    dir: &Path,
    record: &ModelRecord,
    z: &[f64],
    bounds: [f64; 2],
) -> SurrogateReport {
    let training = record.training.as_ref();
    let region = training.and_then(|t| t.control_region.as_ref());
    SurrogateReport {
        folder: Some(dir.display().to_string()),
        architecture: record.architecture.clone(),
        test_metrics: record.test_metrics.clone(),
        data_wall_s: training.map(|t| t.data_wall_s),
        training_wall_s: training.map(|t| t.wall_s),
        training_region: region.map(|region| {
            let (outside, distance) = region.excess(z, bounds);
            TrainingRegionReport {
                centre: region.centre.clone(),
                radius: region.radius,
                optimum_components_outside: outside,
                optimum_max_distance_outside: distance,
            }
        }),
    }
}

/// The PDE on fresh samples at the optimum, the reference, the risk-neutral optimum and z = 0.
struct FreshValues {
    optimum: Vec<f64>,
    reference: Option<Vec<f64>>,
    risk_neutral: Option<Vec<f64>>,
    zero: Vec<f64>,
    wall_s: f64,
}

fn fresh_values(
    problem: &Problem,
    pde: &ControlledDiffusion,
    config: &OuuConfig,
    optimum: &[f64],
    reference: Option<&[f64]>,
    neutral: Option<&[f64]>,
) -> Result<FreshValues> {
    let ms = parameter_samples(
        problem,
        config.seed,
        FRESH_OFFSET..FRESH_OFFSET + config.fresh as u64,
    )?;
    let t = std::time::Instant::now();
    let bound = pde.bind(&ms)?;
    let z0 = vec![0.0; ControlledMap::control_dim(pde)];
    let optimum = pde_values(bound.as_ref(), optimum)?;
    let reference = reference
        .map(|z| pde_values(bound.as_ref(), z))
        .transpose()?;
    let risk_neutral = neutral.map(|z| pde_values(bound.as_ref(), z)).transpose()?;
    let zero = pde_values(bound.as_ref(), &z0)?;
    Ok(FreshValues {
        optimum,
        reference,
        risk_neutral,
        zero,
        wall_s: t.elapsed().as_secs_f64(),
    })
}

/// The PDE check's report from the fresh values.
fn pde_check(
    config: &OuuConfig,
    risk: RiskMeasure,
    fresh: &FreshValues,
    reference: Option<&OuuOutcome>,
    online_wall_s: f64,
) -> PdeCheck {
    let stats = |q: &[f64]| QoiStatistics::of(q, config.alpha);
    let r_opt = stats(&fresh.optimum).risk(risk);
    let reference = match (&fresh.reference, reference) {
        (Some(q), Some(ref_report)) => {
            let r_ref = stats(q).risk(risk);
            Some(ReferenceCheck {
                report: config.reference.as_ref().map(|p| p.display().to_string()),
                model: ref_report.model.clone(),
                at_optimum: stats(q),
                risk_at_optimum: r_ref,
                optimality_gap: (r_opt - r_ref) / r_ref.abs().max(f64::MIN_POSITIVE),
                online_wall_s: ref_report.online_wall_s,
                online_speedup: Some(ref_report.online_wall_s / online_wall_s),
            })
        }
        _ => None,
    };
    PdeCheck {
        samples: config.fresh,
        at_optimum: stats(&fresh.optimum),
        risk_at_optimum: r_opt,
        at_zero: stats(&fresh.zero),
        at_risk_neutral: fresh.risk_neutral.as_deref().map(stats),
        reference,
    }
}

/// The fields at the optimum: the PDE state for the first SAA sample, target and control source.
fn optimum_fields(pde: &ControlledDiffusion, z: &[f64], sample0: &[f64]) -> Result<OptimumFields> {
    let state = pde.solve(z, sample0, None)?;
    Ok(OptimumFields {
        mesh: pde.mesh().clone(),
        state_sample0: state.output().to_vec(),
        target: pde.target().to_vec(),
        control_source: pde.control_field(z),
        parameter_sample0: sample0.to_vec(),
    })
}

/// Runs the OUU workflow on `problem` (progress bars on stderr when `progress`).
pub fn run(problem: &Problem, config: &OuuConfig, progress: bool) -> Result<OuuOutcome> {
    let risk = validate(config)?;
    let pde = problem.control_problem()?;
    let n_z = ControlledMap::control_dim(&pde);
    let bounds = pde.bounds();
    let surrogate = config
        .surrogate
        .as_ref()
        .map(|dir| Ok::<_, Error>((dir, load_control_surrogate(dir, problem, &pde)?)))
        .transpose()?;
    let reference = config
        .reference
        .as_ref()
        .map(|p| reference_report(p, n_z, bounds))
        .transpose()?;
    let (qoi, model): (&dyn ControlQoi, String) = match &surrogate {
        Some((dir, (s, _))) => (s, format!("surrogate {}", dir.display())),
        None => (&pde, "PDE".to_string()),
    };
    let samples = parameter_samples(problem, config.seed, 0..config.samples as u64)?;
    let settings = OuuSettings {
        risk,
        control_cost: config.gamma,
        bounds,
        optimizer: BoundedLbfgsSettings {
            max_iterations: config.max_iterations,
            gtol: config.gtol,
            ftol: config.ftol,
            ..Default::default()
        },
    };
    let record = surrogate.as_ref().map(|(_, (_, r))| r);
    let (z_start, start) = start_control(config, record, n_z, bounds)?;
    let z0 = vec![0.0; n_z];
    let solution = solve_ouu(qoi, &samples, &z_start, &settings, risk.name(), progress)?;
    let neutral = if risk != RiskMeasure::Mean && config.risk_neutral {
        let s = OuuSettings {
            risk: RiskMeasure::Mean,
            ..settings
        };
        Some(solve_ouu(qoi, &samples, &z0, &s, "risk-neutral", progress)?)
    } else {
        None
    };
    // Q on the SAA samples at z = 0 with the optimizing model
    let at_zero: Vec<f64> = qoi
        .bind(&samples)?
        .values(&z0)
        .into_iter()
        .collect::<Result<_>>()?;
    let fresh = if config.fresh > 0 {
        let ref_z = reference.as_ref().map(|r| r.optimum.z.as_slice());
        let neutral_z = neutral.as_ref().map(|n| n.z.as_slice());
        Some(fresh_values(
            problem,
            &pde,
            config,
            &solution.z,
            ref_z,
            neutral_z,
        )?)
    } else {
        None
    };
    let stats = |q: &[f64]| QoiStatistics::of(q, config.alpha);
    let pde_check = fresh
        .as_ref()
        .map(|f| pde_check(config, risk, f, reference.as_ref(), solution.wall_s));
    let fields = optimum_fields(&pde, &solution.z, &samples[0])?;
    Ok(OuuOutcome {
        problem: problem.path.display().to_string(),
        problem_hash: problem.hash(),
        model,
        risk,
        control_cost: config.gamma,
        samples: config.samples,
        seed: config.seed,
        bounds,
        optimizer: settings.optimizer,
        start,
        optimum: SolutionSummary::from(&solution),
        saa_statistics: SaaStatistics {
            at_optimum: stats(&solution.qoi),
            at_zero: stats(&at_zero),
            at_risk_neutral: neutral.as_ref().map(|n| stats(&n.qoi)),
        },
        online_wall_s: solution.wall_s,
        history: solution.history.clone(),
        surrogate: surrogate
            .as_ref()
            .map(|(dir, (_, record))| surrogate_report(dir, record, &solution.z, bounds)),
        risk_neutral: neutral.as_ref().map(SolutionSummary::from),
        pde_check,
        values: QoiValues {
            optimum: solution.qoi.clone(),
            at_zero,
            risk_neutral: neutral.map(|n| n.qoi),
            fresh_wall_s: fresh.as_ref().map(|f| f.wall_s),
            fresh_at_optimum: fresh.map(|f| f.optimum),
        },
        fields: Some(fields),
    })
}

/// The Q values behind an OUU run's statistics (for the quantile plots; not in report.json).
#[derive(Debug, Clone, Default)]
pub struct QoiValues {
    /// On the SAA samples at the optimum, at z = 0 and at the risk-neutral optimum.
    pub optimum: Vec<f64>,
    pub at_zero: Vec<f64>,
    pub risk_neutral: Option<Vec<f64>>,
    /// With the PDE on the fresh samples at the optimum.
    pub fresh_at_optimum: Option<Vec<f64>>,
    /// Wall time of the PDE check on the fresh samples.
    pub fresh_wall_s: Option<f64>,
}

/// Fields on the mesh at the optimum (for the .vtu and the control plot; not in report.json).
#[derive(Debug, Clone)]
pub struct OptimumFields {
    pub mesh: Mesh,
    /// The PDE state at the optimum for the first SAA sample.
    pub state_sample0: Vec<f64>,
    pub target: Vec<f64>,
    /// The control source Σ z_k φ_k.
    pub control_source: Vec<f64>,
    pub parameter_sample0: Vec<f64>,
}
