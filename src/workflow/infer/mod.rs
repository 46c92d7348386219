//! Bayesian inversion as a typed workflow: synthetic truth and data, the MAP point (Newton–CG or
//! L-BFGS on Φ(m) = ½‖q(m) − d‖²_Γ⁻¹ + ½‖m − m̄‖²_R), its PDE refinement for delayed
//! acceptance, the low-rank Laplace approximation N(m_MAP, (H_GN + R)⁻¹), and MCMC, with the PDE
//! or a surrogate as the forward map q.
//!
//! [`run`] takes a loaded [`Problem`] and an [`InferConfig`] and returns an [`InferOutcome`];
//! it writes nothing but the chains' checkpoints (where [`InferConfig::chains_dir`] is set) and
//! prints nothing but through the [`Progress`] handle it is given.

mod evidence;
mod outcome;
mod statistics;

use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

pub use evidence::{evidence, DataFit, DataSource, Evidence};
pub use outcome::{
    CostReport, Diagnostics, InferOutcome, InferReport, LaplaceReport, MapReport, McmcReport,
    QoiDiagnostics, RefinedMapReport, RunCost, SavedSamples,
};
pub use statistics::{monte_carlo_floor, relative_difference, R_HAT_CONVERGED};

use crate::error::{Error, Result};
use crate::inference::laplace::prior_pointwise_variance;
use crate::inference::mcmc::{moments, read_saved_samples, run_chains, ChainState, Target};
use crate::inference::{
    map_newton_cg, KernelKind, Laplace, MapResult, McmcSettings, NewtonCgSettings, Posterior,
};
use crate::map::DifferentiableMap;
use crate::misfit::GaussianMisfit;
use crate::nn::Surrogate;
use crate::prior::BiLaplacianPrior;
use crate::problem::Problem;
use crate::store::Fingerprint;

/// What to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// MAP point (Newton–CG).
    Map,
    /// MAP + low-rank Laplace approximation.
    Laplace,
    /// MAP + Laplace + MCMC.
    Mcmc,
}

/// MAP optimizers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Optimizer {
    /// Inexact Newton–CG (Gauss–Newton Hessian first, then the full one).
    NewtonCg,
    /// L-BFGS (argmin).
    Lbfgs,
}

/// The forward map q of the posterior.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardMap {
    /// The problem's PDE.
    Pde,
    /// A trained surrogate (model folder).
    Surrogate(PathBuf),
}

/// Settings shared by inference and comparison runs (the `dino infer` defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InferOptions {
    /// MCMC steps per chain after burn-in.
    pub samples: usize,
    /// MCMC burn-in steps per chain.
    pub burn_in: usize,
    /// Independent chains (run in parallel).
    pub chains: usize,
    /// Step size β ∈ (0, 1]; `None`: the kernel's default ([`default_step`]).
    pub step: Option<f64>,
    /// Rank of the Laplace approximation (prior-preconditioned GN Hessian eigenpairs).
    pub rank: usize,
    /// The true parameter: a prior sample with this seed, or the `.npy` file `true_param`.
    pub true_seed: u64,
    pub true_param: Option<PathBuf>,
    /// Noise standard deviation relative to max |q(m_true)| (`None`: the problem's).
    pub noise: Option<f64>,
    /// Measured values at the problem's observation points (a 1-D `.npy`), instead of synthetic
    /// data or the problem's data CSV.
    pub data: Option<PathBuf>,
    /// Seed of the synthetic noise and of the samplers.
    pub seed: u64,
    /// Folder with an R-orthonormal `decoder.npy`, the subspace of the mMALA and HMC kernels
    /// (`None`: the Laplace eigenvectors).
    pub subspace: Option<PathBuf>,
    /// Surrogate mMALA steps per PDE correction (da-subchain).
    pub subchain: usize,
    /// Leapfrog steps L and step size ε of the HMC kernels.
    pub leapfrog_steps: usize,
    pub leapfrog_size: f64,
    /// Save every K-th post-burn-in state of each chain (0: none).
    pub save_samples: usize,
    pub optimizer: Optimizer,
    /// Newton–CG iterations with the Gauss–Newton Hessian before the full Hessian.
    pub gauss_newton_iterations: usize,
}

impl Default for InferOptions {
    fn default() -> Self {
        InferOptions {
            samples: 4000,
            burn_in: 200,
            chains: 2,
            step: None,
            rank: 50,
            true_seed: 0,
            true_param: None,
            noise: None,
            data: None,
            seed: 0,
            subspace: None,
            subchain: 1,
            leapfrog_steps: 8,
            leapfrog_size: 0.25,
            save_samples: 0,
            optimizer: Optimizer::NewtonCg,
            gauss_newton_iterations: 5,
        }
    }
}

impl InferOptions {
    /// Newton–CG settings of these options.
    pub fn newton_settings(&self) -> NewtonCgSettings {
        NewtonCgSettings {
            gauss_newton_iterations: self.gauss_newton_iterations,
            ..NewtonCgSettings::default()
        }
    }
}

/// One inference run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferConfig {
    pub forward: ForwardMap,
    pub method: Method,
    /// MCMC kernel (`None`: da-subchain with a surrogate, gpcn with the PDE).
    pub kernel: Option<KernelKind>,
    pub options: InferOptions,
    /// Where the chains keep their checkpoints (a run with the same settings resumes them).
    pub chains_dir: Option<PathBuf>,
}

impl InferConfig {
    /// The MCMC kernel: the chosen one or the forward map's default.
    pub fn kernel(&self) -> KernelKind {
        self.kernel.unwrap_or(match self.forward {
            ForwardMap::Surrogate(_) => KernelKind::DaSubchain,
            ForwardMap::Pde => KernelKind::Gpcn,
        })
    }
}

/// Where a workflow reports progress: stage messages and warnings, and the MCMC progress bar.
/// The default methods are silent.
pub trait Progress {
    /// A stage starts, or a warning or note about the run.
    fn note(&self, _message: &str) {}
    /// A bar over `steps` MCMC steps (all chains together).
    fn mcmc_bar(&self, _steps: u64) -> indicatif::ProgressBar {
        indicatif::ProgressBar::hidden()
    }
}

/// Progress that goes nowhere.
pub struct Quiet;

impl Progress for Quiet {}

/// The forward maps of a run: `forward` (the PDE or a surrogate) defines the posterior; `pde`
/// is the exact map (the synthetic data, and stage 2 of delayed acceptance); `label` names
/// `forward` in the report (and in the chains' fingerprint).
pub struct ForwardMaps<'a> {
    pub forward: &'a dyn DifferentiableMap,
    pub pde: &'a dyn DifferentiableMap,
    pub label: String,
}

impl ForwardMaps<'_> {
    /// Whether `forward` is the PDE itself.
    pub fn is_pde(&self) -> bool {
        std::ptr::addr_eq(
            self.forward as *const dyn DifferentiableMap,
            self.pde as *const dyn DifferentiableMap,
        )
    }
}

/// Loads a surrogate and checks it was trained for `problem`.
pub fn load_surrogate(dir: &Path, problem: &Problem) -> Result<Surrogate> {
    let s = Surrogate::load(dir)?;
    s.check_problem(problem, dir)?;
    Ok(s)
}

/// Runs `config` on `problem`: loads the PDE model and the surrogate it names, then
/// [`run_with_maps`].
pub fn run(
    problem: &Problem,
    config: &InferConfig,
    progress: &dyn Progress,
) -> Result<InferOutcome> {
    let pde = problem.model()?;
    let surrogate = match &config.forward {
        ForwardMap::Surrogate(dir) => Some((load_surrogate(dir, problem)?, dir)),
        ForwardMap::Pde => None,
    };
    let mut anchored = None;
    let maps = match &surrogate {
        Some((s, dir)) => ForwardMaps {
            forward: s.map(&mut anchored),
            pde: pde.as_ref(),
            label: format!("surrogate {}", dir.display()),
        },
        None => ForwardMaps {
            forward: pde.as_ref(),
            pde: pde.as_ref(),
            label: "PDE".into(),
        },
    };
    let stages = Stages {
        method: config.method,
        kernel: config.kernel(),
        options: &config.options,
        chains_dir: config.chains_dir.as_deref(),
    };
    run_with_maps(problem, &maps, &stages, progress)
}

/// What [`run_with_maps`] computes, and where the chains keep their checkpoints.
pub struct Stages<'a> {
    pub method: Method,
    pub kernel: KernelKind,
    pub options: &'a InferOptions,
    pub chains_dir: Option<&'a Path>,
}

/// The posteriors of a run, on `forward` and on the PDE, sharing prior and misfit.
struct Posteriors<'a> {
    post: Posterior<'a>,
    pde_post: Posterior<'a>,
    is_pde: bool,
}

impl Posteriors<'_> {
    /// PDE solves so far: the exact posterior's evaluations.
    fn pde_solves(&self) -> usize {
        if self.is_pde {
            self.post.evaluations()
        } else {
            self.pde_post.evaluations()
        }
    }
}

/// MAP (+ Laplace (+ MCMC)) on `maps.forward` with synthetic data from `maps.pde`.
pub fn run_with_maps(
    problem: &Problem,
    maps: &ForwardMaps<'_>,
    stages: &Stages<'_>,
    progress: &dyn Progress,
) -> Result<InferOutcome> {
    let started = Instant::now();
    let (label, opts) = (&maps.label, stages.options);
    let prior = problem.prior()?;
    let evidence = evidence(problem, maps.pde, opts)?;
    let misfit = GaussianMisfit::with_noise(evidence.data.clone(), evidence.noise.clone())?;
    let posts = Posteriors {
        post: Posterior::new(maps.forward, &prior, misfit.clone())?,
        pde_post: Posterior::new(maps.pde, &prior, misfit)?,
        is_pde: maps.is_pde(),
    };
    progress.note(&format!("[{label}] MAP by Newton–CG …"));
    let map = find_map(&posts.post, &prior, opts)?;
    if !map.converged {
        progress.note(&format!(
            "warning: Newton–CG stopped after {} iterations without meeting the tolerance",
            map.iterations
        ));
    }
    let mut report = InferReport {
        problem: problem.path.display().to_string(),
        problem_hash: problem.hash(),
        forward_map: label.clone(),
        noise_std: evidence.noise_std(),
        data_source: evidence.source.clone(),
        data: evidence.data.clone(),
        map_fit: DataFit::new(
            &evidence.data,
            &maps.forward.evaluate(&map.m)?,
            &evidence.noise,
        ),
        map: map_report(&map, evidence.m_true.as_deref()),
        map_pde_refined: None,
        laplace: None,
        mcmc: None,
        cost: CostReport {
            wall_s: 0.0,
            pde_solves: 0,
            setup_wall_s: 0.0,
            setup_pde_solves: 0,
            surrogate_calls: 0,
        },
    };
    // Delayed acceptance targets the PDE posterior: its proposals are centred at the PDE MAP,
    // found by a few PDE Newton steps warm-started at the surrogate MAP; the Hessian (the
    // expensive part: hundreds of Hessian actions) stays the surrogate's.
    let center = if stages.method == Method::Mcmc && stages.kernel.is_delayed() && !posts.is_pde {
        progress.note(&format!(
            "[{label}] refining the MAP with the PDE (warm start) …"
        ));
        let refined = map_newton_cg(&posts.pde_post, &map.m, &opts.newton_settings())?;
        report.map_pde_refined = Some(RefinedMapReport {
            iterations: refined.iterations,
            cost: refined.cost,
            evaluations: refined.evaluations,
            incremental_solves: refined.incremental_solves,
            wall_s: refined.wall_s,
            relative_difference_to_surrogate_map: relative_difference(&map.m, &refined.m),
        });
        refined.m
    } else {
        map.m.clone()
    };
    let (mut laplace_variance, mut laplace) = (vec![], None);
    if stages.method != Method::Map {
        progress.note(&format!(
            "[{label}] Laplace approximation (rank {}) …",
            opts.rank
        ));
        let t = Instant::now();
        let point = posts.post.linearize(&center)?;
        let lap = Laplace::at(&posts.post, &point, &center, opts.rank, 10, opts.seed)?;
        laplace_variance = lap.pointwise_variance(&prior_pointwise_variance(&prior));
        report.laplace = Some(LaplaceReport {
            rank: lap.eigenvalues.len(),
            eigenvalues: lap.eigenvalues.to_vec(),
            wall_s: t.elapsed().as_secs_f64(),
        });
        laplace = Some(lap);
    }
    let mut cost = RunCost {
        setup_wall_s: started.elapsed().as_secs_f64(),
        setup_pde_solves: posts.pde_solves(),
        ..RunCost::default()
    };
    let sampled = match (&laplace, stages.method) {
        (Some(lap), Method::Mcmc) => Some(sample(
            problem, &prior, maps, &posts, lap, &center, stages, progress,
        )?),
        _ => None,
    };
    let mut outcome = InferOutcome {
        report,
        m_true: evidence.m_true,
        m_map: map.m,
        laplace_variance,
        laplace,
        mean: None,
        variance: None,
        traces: vec![],
        posterior_samples: None,
        wall_s: 0.0,
        cost,
        ess_min: None,
        chain_spread: None,
        moment_errors: None,
    };
    if let Some(mut s) = sampled {
        s.report.relative_error_of_mean_to_truth = outcome
            .m_true
            .as_ref()
            .map(|t| relative_difference(&s.mean, t));
        cost.mcmc_wall_s = s.report.wall_s;
        cost.mcmc_pde_solves = s.report.diagnostics.pde_solves;
        outcome.cost = cost;
        outcome.ess_min = Some(s.report.diagnostics.ess_min).filter(|e| e.is_finite());
        outcome.chain_spread = statistics::chain_spread(&s.chains);
        outcome.moment_errors = statistics::moment_errors(&s.chains);
        outcome.traces = statistics::leading_traces(&s.chains);
        outcome.posterior_samples = s.samples;
        outcome.report.mcmc = Some(s.report);
        outcome.mean = Some(s.mean);
        outcome.variance = Some(s.variance);
    }
    outcome.wall_s = started.elapsed().as_secs_f64();
    outcome.report.cost = CostReport {
        wall_s: outcome.wall_s,
        pde_solves: posts.pde_solves(),
        setup_wall_s: cost.setup_wall_s,
        setup_pde_solves: cost.setup_pde_solves,
        surrogate_calls: if posts.is_pde {
            0
        } else {
            posts.post.evaluations()
        },
    };
    Ok(outcome)
}

/// The MAP point, from the prior mean.
fn find_map(
    post: &Posterior<'_>,
    prior: &BiLaplacianPrior,
    opts: &InferOptions,
) -> Result<MapResult> {
    match opts.optimizer {
        Optimizer::NewtonCg => map_newton_cg(post, prior.mean(), &opts.newton_settings()),
        Optimizer::Lbfgs => crate::inference::lbfgs::map_lbfgs(post, prior.mean(), 2000, 1e-6),
    }
}

fn map_report(map: &MapResult, m_true: Option<&[f64]>) -> MapReport {
    MapReport {
        converged: map.converged,
        iterations: map.iterations,
        cost: map.cost,
        evaluations: map.evaluations,
        incremental_solves: map.incremental_solves,
        wall_s: map.wall_s,
        relative_error_to_truth: m_true.map(|t| relative_difference(&map.m, t)),
        history: map.history.clone(),
    }
}

/// The default step size β of each kernel.
pub fn default_step(kernel: KernelKind) -> f64 {
    match kernel {
        KernelKind::Pcn => 0.1,
        KernelKind::Mala => 0.2,
        KernelKind::Gpcn => 0.5,
        KernelKind::Da => 0.3,
        KernelKind::Mmala => 0.5,
        KernelKind::DaMmala => 0.5,
        KernelKind::DaSubchain => 0.25,
        KernelKind::Hmc | KernelKind::DaHmc => 0.5,
    }
}

/// What the chains produced.
struct Sampled {
    report: McmcReport,
    chains: Vec<ChainState>,
    mean: Vec<f64>,
    variance: Vec<f64>,
    samples: Option<Array2<f64>>,
}

/// Runs (or resumes) the chains from `center` and summarizes them.
#[allow(clippy::too_many_arguments)]
fn sample(
    problem: &Problem,
    prior: &BiLaplacianPrior,
    maps: &ForwardMaps<'_>,
    posts: &Posteriors<'_>,
    lap: &Laplace,
    center: &[f64],
    stages: &Stages<'_>,
    progress: &dyn Progress,
) -> Result<Sampled> {
    let (label, opts, kernel) = (&maps.label, stages.options, stages.kernel);
    let uses_subspace = kernel.is_mmala() || kernel.is_hmc();
    if opts.subspace.is_some() && !uses_subspace {
        progress.note(&format!(
            "[{label}] note: --subspace is used by the mmala, da-mmala, hmc and da-hmc kernels only; ignored for {}",
            kernel_name(kernel)
        ));
    }
    let subspace = opts
        .subspace
        .as_ref()
        .filter(|_| uses_subspace)
        .map(|dir| load_subspace(dir, prior))
        .transpose()?;
    let step = opts.step.unwrap_or(default_step(kernel));
    let settings = McmcSettings {
        kernel,
        step,
        samples: opts.samples,
        burn_in: opts.burn_in,
        chains: opts.chains,
        seed: opts.seed,
        qoi_directions: 4,
        checkpoint_every: 250,
        subchain: opts.subchain,
        leapfrog_steps: opts.leapfrog_steps,
        leapfrog_size: opts.leapfrog_size,
        sample_every: opts.save_samples,
    };
    let (exact, screen) = if kernel.is_delayed() {
        (&posts.pde_post, Some(&posts.post))
    } else {
        (&posts.post, None)
    };
    let target = Target {
        exact,
        screen,
        laplace: lap,
        subspace: subspace.as_ref(),
    };
    if kernel.is_delayed() && posts.is_pde {
        return Err(Error::invalid(
            "command line",
            "--kernel",
            "pcn, mala, gpcn, mmala or hmc with --pde (da, da-mmala, da-subchain and da-hmc need --surrogate)",
            format!("{kernel:?}"),
        ));
    }
    if opts.save_samples > 0 && stages.chains_dir.is_none() {
        return Err(Error::invalid(
            "inference settings",
            "save_samples",
            "a chains_dir to save the states into",
            opts.save_samples,
        ));
    }
    let fingerprint = fingerprint(problem, label, &settings, opts, center, subspace.as_ref());
    let bar = progress.mcmc_bar(((opts.samples + opts.burn_in) * opts.chains) as u64);
    let chains_dir = stages.chains_dir.map(Path::to_path_buf);
    let chains = run_chains(&target, center, &settings, chains_dir, &fingerprint, &bar)?;
    bar.finish_and_clear();
    let (samples, saved) = match stages.chains_dir.filter(|_| opts.save_samples > 0) {
        Some(dir) => {
            let samples = read_saved_samples(dir, &chains, &settings)?;
            let saved = SavedSamples {
                file: "posterior_samples.npy".into(),
                every: opts.save_samples,
                rows: samples.nrows(),
            };
            (Some(samples), Some(saved))
        }
        None => (None, None),
    };
    let (mean, variance) = moments(&chains);
    // PDE solves and wall time of the chains (resumed chains included): the exact
    // posterior's evaluations when it is the PDE
    let chain_pde_solves: usize = if kernel.is_delayed() || posts.is_pde {
        chains.iter().map(|c| c.exact_evaluations).sum()
    } else {
        0
    };
    // the elapsed time of the chains: they run `threads` at a time, each timed while the
    // others share the machine, so Σ wall / threads (= the slowest chain's wall when there
    // are no more chains than threads; twice it for 4 chains on 2 cores)
    let threads = rayon::current_num_threads().clamp(1, chains.len().max(1));
    let mcmc_wall = chains.iter().map(|c| c.wall_s).sum::<f64>() / threads as f64;
    let report = McmcReport {
        kernel,
        step,
        rho: (1.0 - step * step).sqrt(),
        chains: opts.chains,
        samples_per_chain: opts.samples,
        burn_in: opts.burn_in,
        wall_s: mcmc_wall,
        diagnostics: statistics::diagnostics(&chains, mcmc_wall, chain_pde_solves),
        relative_error_of_mean_to_truth: None,
        failed_proposals: chains.iter().flat_map(|c| c.failures.clone()).collect(),
        saved_samples: saved,
    };
    Ok(Sampled {
        report,
        chains,
        mean,
        variance,
        samples,
    })
}

/// What the chains' states depend on, but the chain length (a longer run continues a shorter
/// one): a chain checkpoint resumes only under the same key.
#[derive(Serialize)]
struct ChainKey<'a> {
    problem_hash: String,
    true_seed: u64,
    forward_map: &'a str,
    kernel: KernelKind,
    step: f64,
    burn_in: usize,
    chains: usize,
    seed: u64,
    rank: usize,
    subchain: usize,
    leapfrog_steps: usize,
    leapfrog_size: f64,
    /// The fingerprint of the centre's (and the subspace's) bytes.
    center: Fingerprint,
}

/// The chains' resume fingerprint ([`ChainKey`]).
fn fingerprint(
    problem: &Problem,
    label: &str,
    settings: &McmcSettings,
    opts: &InferOptions,
    center: &[f64],
    subspace: Option<&Array2<f64>>,
) -> String {
    let mut center_bytes: Vec<u8> = center.iter().flat_map(|v| v.to_le_bytes()).collect();
    if let Some(v) = subspace {
        center_bytes.extend(v.iter().flat_map(|v| v.to_le_bytes()));
    }
    let key = ChainKey {
        problem_hash: problem.hash(),
        true_seed: opts.true_seed,
        forward_map: label,
        kernel: settings.kernel,
        step: settings.step,
        burn_in: opts.burn_in,
        chains: opts.chains,
        seed: opts.seed,
        rank: opts.rank,
        subchain: settings.subchain,
        leapfrog_steps: settings.leapfrog_steps,
        leapfrog_size: settings.leapfrog_size,
        center: Fingerprint::of_bytes(&center_bytes),
    };
    Fingerprint::of(&key).to_string()
}

/// The mMALA subspace V from `dir/decoder.npy`, checked to be R-orthonormal (Vᵀ R V = I).
fn load_subspace(dir: &Path, prior: &BiLaplacianPrior) -> Result<Array2<f64>> {
    let path = dir.join("decoder.npy");
    if !path.exists() {
        return Err(Error::invalid(
            "command line",
            "--subspace",
            "a folder with decoder.npy: a `dino bases` folder or a DIPNet model (a generic network has no input basis)",
            dir.display(),
        ));
    }
    let v = crate::io::npy::read_matrix(&path, prior.dim(), "decoder")?;
    let rv = crate::linalg::eigen::columnwise(&v, |c| prior.precision_mul(c));
    let gram = v.t().dot(&rv);
    let defect = gram
        .indexed_iter()
        .map(|((i, j), g)| (g - if i == j { 1.0 } else { 0.0 }).abs())
        .fold(0.0, f64::max);
    if defect > 1e-6 {
        return Err(Error::invalid(
            path.display().to_string(),
            "decoder",
            "an R-orthonormal basis, Vᵀ R V = I (an active-subspace basis)",
            format!("max |Vᵀ R V − I| = {defect:.2e}"),
        ));
    }
    Ok(v)
}

/// A kernel's name in messages.
pub fn kernel_name(k: KernelKind) -> &'static str {
    match k {
        KernelKind::Pcn => "pCN",
        KernelKind::Mala => "∞-MALA",
        KernelKind::Gpcn => "gpCN",
        KernelKind::Da => "delayed acceptance (surrogate gpCN + PDE correction)",
        KernelKind::Mmala => "mMALA (local Gauss–Newton geometry in a fixed subspace)",
        KernelKind::DaMmala => "delayed acceptance (surrogate mMALA + PDE correction)",
        KernelKind::DaSubchain => {
            "delayed acceptance of surrogate mMALA sub-chains (one PDE correction per sub-chain)"
        }
        KernelKind::Hmc => "HMC in the Laplace subspace (Gauss–Newton mass matrix at the MAP)",
        KernelKind::DaHmc => {
            "delayed acceptance of surrogate HMC moves (one PDE correction per move)"
        }
    }
}
