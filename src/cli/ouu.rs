//! `dino ouu`: risk-averse optimal control under an uncertain parameter, with the PDE or a control
//! surrogate (MR-DINO) behind the same SAA objective, and the check of a surrogate optimum with
//! the PDE on fresh samples.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::error::{Error, Result};
use crate::report::ouu::write_outputs;
use crate::report::write_text;
use crate::workflow::ouu::{OuuConfig, OuuOutcome, RiskKind};

/// Risk measures as the CLI names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RiskName {
    /// E[Q]
    Mean,
    /// E[Q] + β Var[Q]
    Meanvar,
    /// CVaR_α[Q] (smoothed Rockafellar–Uryasev)
    Cvar,
}

/// Arguments of `dino ouu`.
#[derive(Debug, Args)]
#[command(
    group = clap::ArgGroup::new("forward").required(true).args(["pde", "surrogate"]),
    allow_negative_numbers = true
)]
pub struct OuuArgs {
    /// Problem file with [control] and [qoi] sections.
    #[arg(long)]
    problem: PathBuf,
    /// Optimize with the PDE.
    #[arg(long)]
    pde: bool,
    /// Optimize with this control surrogate (`dino train --control-data`).
    #[arg(long)]
    surrogate: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = RiskName::Cvar)]
    risk: RiskName,
    /// CVaR level α ∈ (0, 1).
    #[arg(long, default_value_t = 0.95)]
    alpha: f64,
    /// Variance weight β ≥ 0 of the meanvar risk.
    #[arg(long, default_value_t = 1.0)]
    beta: f64,
    /// Smoothing ε > 0 of the CVaR plus function.
    #[arg(long, default_value_t = 1e-4)]
    epsilon: f64,
    /// Control cost γ ≥ 0: adds (γ/2)‖z‖².
    #[arg(long, default_value_t = 0.0)]
    gamma: f64,
    /// SAA sample size N (Luo et al.'s MR-DINO driver uses 64; SOUPy's example 16).
    #[arg(long, default_value_t = 64)]
    samples: usize,
    /// Seed of the SAA samples (and of the fresh check samples).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Maximum optimizer iterations.
    #[arg(long, default_value_t = 100)]
    max_iter: usize,
    /// Stop when the projected gradient's ∞-norm is below this.
    #[arg(long, default_value_t = 1e-5)]
    gtol: f64,
    /// Stop when the relative objective decrease is below this.
    #[arg(long, default_value_t = 1e-7)]
    ftol: f64,
    /// Re-evaluate the optimum with the PDE on this many fresh samples (0: skip).
    #[arg(long, default_value_t = 128)]
    fresh: usize,
    /// report.json of another `dino ouu` run (e.g. the PDE-SAA optimum): its control is
    /// re-evaluated on the same fresh samples and the optimality gap reported.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Start the optimizer at this control (.npy, n_z values in the bounds; e.g. a surrogate's
    /// optimum `control.npy`, to finish its optimization with the PDE) instead of z = 0 (or,
    /// for a surrogate trained around a control, instead of that control).
    #[arg(long)]
    start: Option<PathBuf>,
    /// Skip the risk-neutral (mean) optimization used for comparison.
    #[arg(long)]
    no_risk_neutral: bool,
    /// Override the problem's mesh size.
    #[arg(long)]
    mesh: Option<i64>,
    /// Output folder.
    #[arg(long, default_value = "out/ouu")]
    out: PathBuf,
}

impl OuuArgs {
    /// The workflow's configuration.
    fn config(&self) -> OuuConfig {
        OuuConfig {
            surrogate: self.surrogate.clone(),
            risk: match self.risk {
                RiskName::Mean => RiskKind::Mean,
                RiskName::Meanvar => RiskKind::MeanVariance,
                RiskName::Cvar => RiskKind::Cvar,
            },
            alpha: self.alpha,
            beta: self.beta,
            epsilon: self.epsilon,
            gamma: self.gamma,
            samples: self.samples,
            seed: self.seed,
            max_iterations: self.max_iter,
            gtol: self.gtol,
            ftol: self.ftol,
            fresh: self.fresh,
            reference: self.reference.clone(),
            start: self.start.clone(),
            risk_neutral: !self.no_risk_neutral,
        }
    }
}

pub fn run(args: OuuArgs) -> Result<()> {
    let config = args.config();
    crate::workflow::ouu::validate(&config)?;
    let problem = super::load_problem(&args.problem, args.mesh)?;
    let outcome = crate::workflow::ouu::run(&problem, &config, true)?;
    print_summary(&outcome, &config);
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let fields = outcome.fields.as_ref().expect("fields of a fresh run");
    let history = &outcome.history;
    write_outputs(
        &args.out,
        &outcome.optimum.z,
        history,
        &outcome.values,
        fields,
    )?;
    write_text(
        &args.out.join("report.json"),
        &serde_json::to_string_pretty(&outcome).expect("serializable"),
    )?;
    eprintln!(
        "wrote {}/report.json, control.npy, control.svg, qoi_distribution.svg, convergence.svg, fields.vtu",
        args.out.display()
    );
    Ok(())
}

/// What the run found, on stderr.
fn print_summary(o: &OuuOutcome, config: &OuuConfig) {
    let (bounds, n_z) = (o.bounds, o.optimum.z.len());
    eprintln!(
        "{} optimization of {} over {} samples with the {} ({n_z} controls in [{}, {}]), starting at {}",
        o.risk.name(), o.problem, o.samples, o.model, bounds[0], bounds[1], o.start
    );
    for f in &o.optimum.failures {
        eprintln!("warning: a trial step failed and was rejected: {f}");
    }
    let region = o
        .surrogate
        .as_ref()
        .and_then(|s| s.training_region.as_ref());
    if let Some(r) = region.filter(|r| r.optimum_components_outside > 0) {
        eprintln!(
            "warning: the optimum leaves the region the surrogate was trained on ({} of {n_z} controls outside it, by up to {:.3}); its predictions there are extrapolations: refine around the new optimum",
            r.optimum_components_outside, r.optimum_max_distance_outside
        );
    }
    if let (Some(check), Some(t)) = (&o.pde_check, o.values.fresh_wall_s) {
        eprintln!("PDE check on {} fresh samples in {t:.1} s", check.samples);
        if let Some(r) = &check.reference {
            eprintln!(
                "PDE-evaluated {} on fresh samples: {:.6e} here vs {:.6e} for the reference ({}): optimality gap {:+.2}%; online time {:.3} s vs {:.3} s",
                o.risk.name(), check.risk_at_optimum, r.risk_at_optimum, r.model,
                100.0 * r.optimality_gap, o.online_wall_s, r.online_wall_s
            );
        }
    }
    let (s, zero, opt) = (
        &o.saa_statistics.at_optimum,
        &o.saa_statistics.at_zero,
        &o.optimum,
    );
    eprintln!(
        "optimum after {} iterations ({} objective evaluations × {} samples, {:.2} s, {:?}): objective {:.6e}; on the SAA samples mean Q {:.4e}, CVaR_{} {:.4e} (z = 0: mean {:.4e}, CVaR {:.4e})",
        opt.iterations, opt.evaluations, o.samples, opt.wall_s, opt.stop, opt.objective,
        s.mean, config.alpha, s.cvar_alpha, zero.mean, zero.cvar_alpha,
    );
}
