//! `dino infer` and `dino compare`: Bayesian inversion with the PDE or a surrogate behind the
//! same posterior, and the two side by side. The pipelines are [`crate::workflow::infer`] and
//! [`crate::workflow::compare`]; this module turns arguments into their configs and writes
//! their outcomes ([`crate::report::inference`]).

use std::path::{Path, PathBuf};

use clap::Args;

use crate::error::{Error, Result};
use crate::inference::KernelKind;
use crate::problem::Problem;
use crate::report::inference::{compare_markdown, write_outcome};
use crate::report::write_text;
use crate::workflow::compare::{self, CompareConfig};
use crate::workflow::infer::{
    self, kernel_name, ForwardMap, InferConfig, InferOptions, Method, Optimizer, Progress,
};
use crate::workflow::infer::{InferOutcome, R_HAT_CONVERGED};

/// Settings shared by `dino infer` and `dino compare`.
#[derive(Debug, Clone, Args)]
pub struct InferenceOptions {
    /// Problem file (TOML).
    #[arg(long)]
    problem: PathBuf,
    /// MCMC steps per chain after burn-in.
    #[arg(long, default_value_t = 4000)]
    samples: usize,
    /// MCMC burn-in steps per chain.
    #[arg(long, default_value_t = 200)]
    burn_in: usize,
    /// Independent chains (run in parallel).
    #[arg(long, default_value_t = 2)]
    chains: usize,
    /// Step size β ∈ (0, 1] (ρ = √(1 − β²)); default 0.1 for pCN, 0.2 for ∞-MALA, 0.5 for
    /// gpCN, 0.3 for DA, 0.5 for mMALA and DA-mMALA, 0.25 for the da-subchain's surrogate steps,
    /// 0.5 for the complement's pCN moves of hmc and da-hmc.
    #[arg(long)]
    step: Option<f64>,
    /// Rank of the Laplace approximation (prior-preconditioned GN Hessian eigenpairs).
    #[arg(long, default_value_t = 50)]
    rank: usize,
    /// True parameter: a prior sample with this seed ...
    #[arg(long, default_value_t = 0)]
    true_seed: u64,
    /// ... or this .npy file (1-D float64, one value per mesh vertex).
    #[arg(long)]
    true_param: Option<PathBuf>,
    /// Noise standard deviation relative to max |q(m_true)| (default: the problem's noise).
    #[arg(long)]
    noise: Option<f64>,
    /// Measured values at the problem's observation points (1-D float64 .npy, one per point in
    /// the problem's order), instead of synthetic data; the noise model is the problem's
    /// [noise] std or covariance.
    #[arg(long, conflicts_with_all = ["true_param", "noise"])]
    data: Option<PathBuf>,
    /// Seed of the synthetic noise and of the samplers.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Subspace of the mMALA kernels: a folder with `decoder.npy`, an R-orthonormal basis
    /// (a `dino bases --kind active-subspace` folder, or a surrogate trained on one);
    /// default: the Laplace eigenvectors.
    #[arg(long)]
    subspace: Option<PathBuf>,
    /// Surrogate mMALA steps per PDE correction of the da-subchain kernel (1: Christen–Fox
    /// delayed acceptance on the corrected surrogate; longer sub-chains pay where a PDE solve
    /// costs many surrogate steps and the corrected surrogate is accurate at the noise level).
    #[arg(long, default_value_t = 1)]
    subchain: usize,
    /// Leapfrog steps L per HMC transition (hmc, da-hmc).
    #[arg(long, default_value_t = 8)]
    leapfrog_steps: usize,
    /// Leapfrog step size ε of the HMC kernels, in the coordinates whitened by the
    /// Gauss–Newton Hessian at the MAP (L ε ≈ 2 crosses the Laplace approximation).
    #[arg(long, default_value_t = 0.25)]
    leapfrog_size: f64,
    /// Save every K-th post-burn-in state of each chain to OUT/posterior_samples.npy (rows:
    /// chain 0's states, then chain 1's, …; d_M columns), e.g. as training data where the
    /// posterior lives (`dino generate --parameters`). 0: none.
    #[arg(long, default_value_t = 0)]
    save_samples: usize,
    /// MAP optimizer: inexact Newton–CG, or L-BFGS (argmin).
    #[arg(long, value_enum, default_value_t = Optimizer::NewtonCg)]
    optimizer: Optimizer,
    /// Newton–CG iterations with the Gauss–Newton Hessian before the full Hessian (used where
    /// the forward map has second derivatives: the diffusion PDE models).
    #[arg(long, default_value_t = 5)]
    gauss_newton_iterations: usize,
}

impl InferenceOptions {
    /// The workflow's options.
    fn options(&self) -> InferOptions {
        InferOptions {
            samples: self.samples,
            burn_in: self.burn_in,
            chains: self.chains,
            step: self.step,
            rank: self.rank,
            true_seed: self.true_seed,
            true_param: self.true_param.clone(),
            noise: self.noise,
            data: self.data.clone(),
            seed: self.seed,
            subspace: self.subspace.clone(),
            subchain: self.subchain,
            leapfrog_steps: self.leapfrog_steps,
            leapfrog_size: self.leapfrog_size,
            save_samples: self.save_samples,
            optimizer: self.optimizer,
            gauss_newton_iterations: self.gauss_newton_iterations,
        }
    }
}

/// Arguments of `dino infer`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("forward").required(true).args(["pde", "surrogate"]))]
pub struct InferArgs {
    #[command(flatten)]
    options: InferenceOptions,
    /// Use the PDE as the forward map.
    #[arg(long)]
    pde: bool,
    /// Use this trained surrogate (model folder) as the forward map.
    #[arg(long)]
    surrogate: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Method::Mcmc)]
    method: Method,
    /// MCMC kernel (default: da-subchain with a surrogate, gpcn with the PDE).
    #[arg(long, value_enum)]
    kernel: Option<KernelKind>,
    /// Output folder.
    #[arg(long, default_value = "out/infer")]
    out: PathBuf,
}

/// Progress on stderr: stage messages, warnings, and an MCMC bar.
struct Stderr;

impl Progress for Stderr {
    fn note(&self, message: &str) {
        eprintln!("{message}");
    }

    fn mcmc_bar(&self, steps: u64) -> indicatif::ProgressBar {
        let bar = indicatif::ProgressBar::new(steps);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "MCMC {bar:30} {pos}/{len} steps [{elapsed}<{eta}]",
            )
            .expect("valid template"),
        );
        bar
    }
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// `x`, or 0 where it is not finite (`null` in the report).
fn finite_or_zero(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

pub fn run(args: InferArgs) -> Result<()> {
    let problem = Problem::load(&args.options.problem)?;
    let config = InferConfig {
        forward: match &args.surrogate {
            Some(dir) => ForwardMap::Surrogate(dir.clone()),
            None => ForwardMap::Pde,
        },
        method: args.method,
        kernel: args.kernel,
        options: args.options.options(),
        chains_dir: Some(args.out.join("chains")),
    };
    create_dir(&args.out)?;
    let outcome = infer::run(&problem, &config, &Stderr)?;
    write_outcome(&problem, &outcome, &args.out)?;
    print_summary(&outcome, config.kernel(), &args.out);
    if args.method != Method::Map {
        eprintln!(
            "Laplace approximation: {}/laplace/ (training data around it: dino generate --laplace)",
            args.out.display()
        );
    }
    Ok(())
}

/// The MAP's and the chains' summary lines, and the warning of chains that have not mixed.
fn print_summary(outcome: &InferOutcome, kernel: KernelKind, out: &Path) {
    let map = &outcome.report.map;
    let fit = &outcome.report.map_fit;
    match map.relative_error_to_truth {
        Some(e) => eprintln!(
            "MAP: {} Newton iterations, relative error to the true parameter {e:.3}, χ²/datum {:.3}",
            map.iterations, fit.chi2_per_datum
        ),
        None => eprintln!(
            "MAP: {} Newton iterations, χ²/datum {:.3} (≈ 1 where the model and noise fit the data), max |normalized residual| {:.2}",
            map.iterations, fit.chi2_per_datum, fit.max_abs_normalized_residual
        ),
    }
    if let Some(d) = outcome.diagnostics() {
        eprintln!(
            "MCMC ({}): acceptance {:.2} (stage 1 {:.2}), min ESS {:.0}, {:.1} ESS/s, {} PDE solves",
            kernel_name(kernel),
            finite_or_zero(d.acceptance_rate),
            finite_or_zero(d.stage1_acceptance_rate),
            finite_or_zero(d.ess_min),
            finite_or_zero(d.ess_per_second),
            d.pde_solves,
        );
        if d.converged == Some(false) {
            eprintln!(
                "warning: the chains have not mixed (R̂ = {:.2} ≥ {R_HAT_CONVERGED} on some QoI): their ESS and moments are not reliable; run longer",
                d.r_hat_max.unwrap_or(f64::NAN)
            );
        }
    }
    let mut plots: Vec<String> = std::fs::read_dir(out)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".svg")
                .map(String::from)
        })
        .collect();
    plots.sort();
    let out = out.display();
    eprintln!(
        "done in {:.1} s. Report: {out}/report.json; plots: {out}/*.svg ({}); fields for ParaView: {out}/fields.vtu, as .npy: {out}/map.npy …; residuals: {out}/residuals.csv",
        outcome.wall_s,
        plots.join(", "),
    );
}

/// Arguments of `dino compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    #[command(flatten)]
    options: InferenceOptions,
    /// Trained surrogate (model folder).
    #[arg(long)]
    surrogate: PathBuf,
    /// MCMC kernel of the PDE run.
    #[arg(long, value_enum, default_value_t = KernelKind::Gpcn)]
    pde_kernel: KernelKind,
    /// Steps per chain of the PDE run (default: --samples), which may need fewer or more steps
    /// than the DINO run for the same effective sample size.
    #[arg(long)]
    pde_samples: Option<usize>,
    /// MCMC kernel of the DINO run: delayed acceptance with gpCN (da) or mMALA (da-mmala)
    /// proposals, of whole surrogate mMALA sub-chains (da-subchain) or of surrogate HMC moves
    /// (da-hmc), which sample the PDE posterior; or a surrogate-only kernel (pcn, mala, gpcn,
    /// mmala, hmc), which samples the surrogate's approximate posterior (its differences to the
    /// PDE chain then include the surrogate's bias).
    #[arg(long, value_enum, default_value_t = KernelKind::DaSubchain)]
    dino_kernel: KernelKind,
    /// Output folder (pde/, surrogate/, compare.md, compare.json).
    #[arg(long, default_value = "out/compare")]
    out: PathBuf,
}

pub fn compare(args: CompareArgs) -> Result<()> {
    let problem = Problem::load(&args.options.problem)?;
    let config = CompareConfig {
        options: args.options.options(),
        surrogate: args.surrogate.clone(),
        pde_kernel: args.pde_kernel,
        pde_samples: args.pde_samples,
        dino_kernel: args.dino_kernel,
        out: Some(args.out.clone()),
    };
    let (pde_out, dino_out) = (args.out.join("pde"), args.out.join("surrogate"));
    create_dir(&pde_out)?;
    create_dir(&dino_out)?;
    let outcome = compare::run(&problem, &config, &Stderr)?;
    write_outcome(&problem, &outcome.pde, &pde_out)?;
    write_outcome(&problem, &outcome.dino, &dino_out)?;
    write_text(
        &args.out.join("compare.json"),
        &serde_json::to_string_pretty(&outcome.summary).expect("serializable"),
    )?;
    let md = compare_markdown(&problem, &outcome);
    write_text(&args.out.join("compare.md"), &md)?;
    eprint!("{md}");
    eprintln!(
        "wrote {}/compare.md, compare.json, pde/, surrogate/",
        args.out.display()
    );
    Ok(())
}
