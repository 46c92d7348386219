//! PDE vs DINO inference: the same posterior sampled with the PDE and with a surrogate, and the
//! differences of their MAP points, Laplace variances and MCMC moments, the ESS rates, the
//! Monte-Carlo floor of the differences and the break-even of the surrogate's offline cost.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::infer::{
    self, monte_carlo_floor, relative_difference, ForwardMaps, InferOptions, InferOutcome, Method,
    Progress, Stages,
};
use crate::error::{Error, Result};
use crate::inference::KernelKind;
use crate::problem::Problem;

/// One comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareConfig {
    pub options: InferOptions,
    /// Trained surrogate (model folder).
    pub surrogate: PathBuf,
    /// MCMC kernel of the PDE run (not a delayed-acceptance one).
    pub pde_kernel: KernelKind,
    /// Steps per chain of the PDE run (`None`: `options.samples`).
    pub pde_samples: Option<usize>,
    /// MCMC kernel of the DINO run (delayed acceptance samples the PDE posterior; a
    /// surrogate-only kernel samples the surrogate's).
    pub dino_kernel: KernelKind,
    /// Where the chains keep their checkpoints: `OUT/pde/chains`, `OUT/surrogate/chains`.
    pub out: Option<PathBuf>,
}

/// Both runs and what they say side by side.
#[derive(Debug, Clone, Serialize)]
pub struct CompareOutcome {
    pub pde: InferOutcome,
    pub dino: InferOutcome,
    /// `compare.json`.
    pub summary: CompareSummary,
}

/// `compare.json`: relative differences ‖DINO − PDE‖/‖PDE‖, each run's ESS and cost.
#[derive(Debug, Clone, Serialize)]
pub struct CompareSummary {
    pub map_relative_difference: f64,
    pub posterior_mean_relative_difference: f64,
    pub posterior_variance_relative_difference: f64,
    pub laplace_variance_relative_difference: f64,
    pub pde: RunSummary,
    pub dino: RunSummary,
    /// ESS/s of DINO over ESS/s of the PDE run.
    pub ess_per_second_ratio: f64,
    pub chain_spread: ChainSpreads,
    /// The differences Monte-Carlo error alone would give, were both chains exact.
    pub monte_carlo_floor: Option<Spread>,
    /// ESS at which DINO (offline + online) breaks even with the PDE chain:
    /// E/rate_PDE = offline + E/rate_DINO.
    pub break_even_effective_samples: Option<f64>,
}

/// One run in `compare.json`: its kernel, ESS and cost (`wall_s` and `pde_solves` are the
/// whole result's: set-up plus every MCMC step, resumed ones included).
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub kernel: KernelKind,
    /// Whether the chain samples the PDE posterior (DINO run only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples_pde_posterior: Option<bool>,
    pub ess_min: Option<f64>,
    pub ess_per_second: f64,
    /// Data generation + training time of the surrogate (DINO run only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offline_s: Option<f64>,
    pub wall_s: f64,
    pub pde_solves: usize,
    pub setup_wall_s: f64,
    pub setup_pde_solves: usize,
    pub mcmc_wall_s: f64,
    pub mcmc_pde_solves: usize,
}

/// The largest difference between two chains of each sampler.
#[derive(Debug, Clone, Serialize)]
pub struct ChainSpreads {
    pub pde: Option<Spread>,
    pub dino: Option<Spread>,
}

/// Relative differences of the posterior mean and pointwise variance.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub mean: f64,
    pub variance: f64,
}

impl Spread {
    fn of((mean, variance): (f64, f64)) -> Self {
        Spread { mean, variance }
    }
}

/// A run's ESS per second (0 where it did not sample or the rate is not finite).
pub fn ess_per_second(o: &InferOutcome) -> f64 {
    o.diagnostics()
        .map(|d| d.ess_per_second)
        .filter(|r| r.is_finite())
        .unwrap_or(0.0)
}

fn run_summary(o: &InferOutcome, kernel: KernelKind) -> RunSummary {
    let c = &o.cost;
    RunSummary {
        kernel,
        samples_pde_posterior: None,
        ess_min: o.ess_min,
        ess_per_second: ess_per_second(o),
        offline_s: None,
        wall_s: c.wall_s(),
        pde_solves: c.pde_solves(),
        setup_wall_s: c.setup_wall_s,
        setup_pde_solves: c.setup_pde_solves,
        mcmc_wall_s: c.mcmc_wall_s,
        mcmc_pde_solves: c.mcmc_pde_solves,
    }
}

fn validate(config: &CompareConfig) -> Result<()> {
    if config.pde_kernel.is_delayed() {
        return Err(Error::invalid(
            "command line",
            "--pde-kernel",
            "pcn, mala, gpcn, mmala or hmc",
            format!("{:?}", config.pde_kernel),
        ));
    }
    if config.pde_samples == Some(0) {
        return Err(Error::invalid(
            "command line",
            "--pde-samples",
            "at least one step per chain",
            0,
        ));
    }
    Ok(())
}

/// Runs the PDE inference (label "PDE") and the DINO one (label "DINO"), both MCMC, and
/// composes their outcomes.
pub fn run(
    problem: &Problem,
    config: &CompareConfig,
    progress: &dyn Progress,
) -> Result<CompareOutcome> {
    let pde = problem.model()?;
    let surrogate = infer::load_surrogate(&config.surrogate, problem)?;
    validate(config)?;
    let pde_options = InferOptions {
        samples: config.pde_samples.unwrap_or(config.options.samples),
        ..config.options.clone()
    };
    let chains_dir = |run: &str| config.out.as_ref().map(|o| o.join(run).join("chains"));
    let pde_chains = chains_dir("pde");
    let maps = ForwardMaps {
        forward: pde.as_ref(),
        pde: pde.as_ref(),
        label: "PDE".into(),
    };
    let stages = Stages {
        method: Method::Mcmc,
        kernel: config.pde_kernel,
        options: &pde_options,
        chains_dir: pde_chains.as_deref(),
    };
    let p = infer::run_with_maps(problem, &maps, &stages, progress)?;
    let mut anchored = None;
    let dino_chains = chains_dir("surrogate");
    let maps = ForwardMaps {
        forward: surrogate.map(&mut anchored),
        pde: pde.as_ref(),
        label: "DINO".into(),
    };
    let stages = Stages {
        method: Method::Mcmc,
        kernel: config.dino_kernel,
        options: &config.options,
        chains_dir: dino_chains.as_deref(),
    };
    let s = infer::run_with_maps(problem, &maps, &stages, progress)?;
    let offline = surrogate
        .record
        .training
        .as_ref()
        .map_or(0.0, |t| t.wall_s + t.data_wall_s);
    let summary = summarize(&p, &s, config, offline);
    Ok(CompareOutcome {
        pde: p,
        dino: s,
        summary,
    })
}

/// `compare.json` of the two outcomes; `offline` is the surrogate's data + training time.
fn summarize(
    p: &InferOutcome,
    s: &InferOutcome,
    config: &CompareConfig,
    offline: f64,
) -> CompareSummary {
    let (pm, sm) = (
        p.mean.as_deref().unwrap_or(&[]),
        s.mean.as_deref().unwrap_or(&[]),
    );
    let (pv, sv) = (
        p.variance.as_deref().unwrap_or(&[]),
        s.variance.as_deref().unwrap_or(&[]),
    );
    let (rate_p, rate_s) = (ess_per_second(p), ess_per_second(s));
    let break_even = if rate_s > rate_p && rate_p > 0.0 {
        Some(offline / (1.0 / rate_p - 1.0 / rate_s))
    } else {
        None
    };
    let floor = match (&p.moment_errors, &s.moment_errors) {
        (Some((pe_m, pe_v)), Some((se_m, se_v))) => Some(Spread {
            mean: monte_carlo_floor(se_m, pe_m, pm),
            variance: monte_carlo_floor(se_v, pe_v, pv),
        }),
        _ => None,
    };
    CompareSummary {
        map_relative_difference: relative_difference(&s.m_map, &p.m_map),
        posterior_mean_relative_difference: relative_difference(sm, pm),
        posterior_variance_relative_difference: relative_difference(sv, pv),
        laplace_variance_relative_difference: relative_difference(
            &s.laplace_variance,
            &p.laplace_variance,
        ),
        pde: run_summary(p, config.pde_kernel),
        dino: RunSummary {
            samples_pde_posterior: Some(config.dino_kernel.is_delayed()),
            offline_s: Some(offline),
            ..run_summary(s, config.dino_kernel)
        },
        ess_per_second_ratio: rate_s / rate_p.max(1e-300),
        chain_spread: ChainSpreads {
            pde: p.chain_spread.map(Spread::of),
            dino: s.chain_spread.map(Spread::of),
        },
        monte_carlo_floor: floor,
        break_even_effective_samples: break_even,
    }
}
