//! `dino infer` and `dino compare`: Bayesian inversion with the PDE or a surrogate behind the
//! same posterior, and the two side by side.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};
use ndarray::Array2;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::inference::diagnostics::{
    autocorrelation, between_chain_standard_error, effective_sample_size, r_hat,
};
use crate::inference::laplace::prior_pointwise_variance;
use crate::inference::mcmc::{moments, read_saved_samples, run_chains, ChainState, Target};
use crate::inference::{
    map_newton_cg, synthetic_data, KernelKind, Laplace, McmcSettings, NewtonCgSettings, Posterior,
};
use crate::io::npy::{read_vector, write_matrix};
use crate::io::vtu::{write_vtu, PointField};
use crate::io::write_atomic;
use crate::map::DifferentiableMap;
use crate::misfit::GaussianMisfit;
use crate::nn::Surrogate;
use crate::problem::Problem;
use crate::report::field::heat_map;
use crate::report::svg::{lines, semilogy, Series};
use crate::rng::{stream, Purpose};

/// What to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// MAP point (Newton–CG).
    Map,
    /// MAP + low-rank Laplace approximation.
    Laplace,
    /// MAP + Laplace + MCMC.
    Mcmc,
}

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
    /// Newton–CG settings of these options.
    fn newton_settings(&self) -> NewtonCgSettings {
        NewtonCgSettings {
            gauss_newton_iterations: self.gauss_newton_iterations,
            ..NewtonCgSettings::default()
        }
    }
}

/// MAP optimizers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Optimizer {
    NewtonCg,
    Lbfgs,
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

/// Everything one inference run produced.
pub struct Outcome {
    pub report: Value,
    pub m_map: Vec<f64>,
    pub mean: Option<Vec<f64>>,
    pub variance: Option<Vec<f64>>,
    pub laplace_variance: Vec<f64>,
    /// This run's elapsed time (a resumed chain's earlier steps not included).
    pub wall_s: f64,
    /// What the run's results cost in all, resumed steps included.
    pub cost: RunCost,
    pub ess_min: Option<f64>,
    /// The largest relative differences (mean, pointwise variance) between two chains of the
    /// MCMC run: the Monte-Carlo scale of any comparison of its moments.
    pub chain_spread: Option<(f64, f64)>,
    /// Per-vertex Monte-Carlo standard errors of the pooled posterior mean and pointwise variance,
    /// from the spread between the chains (`between_chain_standard_error`); `None` for one chain.
    pub moment_errors: Option<(Vec<f64>, Vec<f64>)>,
}

/// The cost of an inference result: the set-up (MAP, its PDE refinement, the Laplace
/// approximation) as this run measured it, and the MCMC over the chains' whole length, as the
/// chains recorded it (steps run by earlier, resumed runs included).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunCost {
    pub setup_wall_s: f64,
    pub setup_pde_solves: usize,
    /// Elapsed time of the chains (Σ chain wall / threads) and their PDE solves.
    pub mcmc_wall_s: f64,
    pub mcmc_pde_solves: usize,
}

impl RunCost {
    pub fn wall_s(&self) -> f64 {
        self.setup_wall_s + self.mcmc_wall_s
    }

    pub fn pde_solves(&self) -> usize {
        self.setup_pde_solves + self.mcmc_pde_solves
    }
}

/// A run's cost for compare.json: `wall_s` and `pde_solves` are the whole result's (set-up plus
/// every MCMC step, resumed ones included), split into `setup_*` and `mcmc_*`.
fn cost_json(o: &Outcome) -> Value {
    let c = &o.cost;
    json!({
        "wall_s": c.wall_s(),
        "pde_solves": c.pde_solves(),
        "setup_wall_s": c.setup_wall_s,
        "setup_pde_solves": c.setup_pde_solves,
        "mcmc_wall_s": c.mcmc_wall_s,
        "mcmc_pde_solves": c.mcmc_pde_solves,
    })
}

/// The union of two JSON objects' fields.
fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// Per-vertex standard errors of the pooled mean and pointwise-variance fields, from the spread of
/// the chains' own moments.
fn moment_errors(chains: &[ChainState]) -> Option<(Vec<f64>, Vec<f64>)> {
    let (means, variances): (Vec<Vec<f64>>, Vec<Vec<f64>>) = chains
        .iter()
        .map(|c| moments(std::slice::from_ref(c)))
        .unzip();
    Some((
        between_chain_standard_error(&means)?,
        between_chain_standard_error(&variances)?,
    ))
}

/// The relative difference ‖a − b‖/‖b‖ that Monte-Carlo error alone produces between two
/// independent, unbiased estimates with per-component standard errors `se_a`, `se_b`:
/// √(Σ_i se_a,i² + se_b,i²) / ‖b‖. An observed difference well above it is a bias.
fn monte_carlo_floor(se_a: &[f64], se_b: &[f64], b: &[f64]) -> f64 {
    let var: f64 = se_a.iter().zip(se_b).map(|(x, y)| x * x + y * y).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (var / den).sqrt()
}

/// max over chain pairs of (‖mean_a − mean_b‖/‖mean_b‖, ‖var_a − var_b‖/‖var_b‖); `None` for a
/// single chain.
fn chain_spread(chains: &[ChainState]) -> Option<(f64, f64)> {
    let each: Vec<(Vec<f64>, Vec<f64>)> = chains
        .iter()
        .map(|c| moments(std::slice::from_ref(c)))
        .collect();
    let mut spread: Option<(f64, f64)> = None;
    for (i, a) in each.iter().enumerate() {
        for b in &each[i + 1..] {
            let (m, v) = (
                relative_difference(&a.0, &b.0),
                relative_difference(&a.1, &b.1),
            );
            spread = Some(spread.map_or((m, v), |(sm, sv)| (sm.max(m), sv.max(v))));
        }
    }
    spread
}

/// ‖a − b‖ / ‖b‖ (Euclidean).
fn relative_difference(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den).sqrt()
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomic(path, |w| w.write_all(text.as_bytes()))
}

/// The true parameter and synthetic data (always from the PDE).
fn truth_and_data(
    problem: &Problem,
    pde: &dyn DifferentiableMap,
    opts: &InferenceOptions,
) -> Result<(Vec<f64>, Vec<f64>, f64)> {
    let prior = problem.prior()?;
    let m_true = match &opts.true_param {
        Some(p) => read_vector(p, prior.dim(), "--true-param")?,
        None => prior.sample(&mut stream(opts.true_seed, Purpose::PriorSample, 1 << 40)),
    };
    let relative = match opts.noise {
        Some(n) => n,
        None => problem.noise_relative()?,
    };
    if !(relative > 0.0 && relative.is_finite()) {
        return Err(Error::invalid(
            "command line",
            "--noise",
            "a positive noise level (σ = noise · max |q|)",
            relative,
        ));
    }
    let (data, sigma) = synthetic_data(pde, &m_true, relative, opts.seed)?;
    Ok((m_true, data, sigma))
}

/// Runs MAP (+ Laplace (+ MCMC)) on `forward` (PDE or surrogate), writing plots and fields
/// into `out`. `pde` is the exact map (stage 2 of delayed acceptance).
#[allow(clippy::too_many_arguments)]
fn run_inference(
    problem: &Problem,
    opts: &InferenceOptions,
    forward: &dyn DifferentiableMap,
    pde: &dyn DifferentiableMap,
    label: &str,
    method: Method,
    kernel: KernelKind,
    out: &Path,
) -> Result<Outcome> {
    let started = Instant::now();
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let prior = problem.prior()?;
    let (m_true, data, sigma) = truth_and_data(problem, pde, opts)?;
    let misfit = GaussianMisfit::new(data.clone(), sigma * sigma)?;
    let post = Posterior::new(forward, &prior, misfit.clone())?;
    let pde_post = Posterior::new(pde, &prior, misfit)?;
    let is_pde = std::ptr::addr_eq(
        forward as *const dyn DifferentiableMap,
        pde as *const dyn DifferentiableMap,
    );
    eprintln!("[{label}] MAP by Newton–CG …");
    let map = match opts.optimizer {
        Optimizer::NewtonCg => map_newton_cg(&post, prior.mean(), &opts.newton_settings())?,
        Optimizer::Lbfgs => crate::inference::lbfgs::map_lbfgs(&post, prior.mean(), 2000, 1e-6)?,
    };
    if !map.converged {
        eprintln!(
            "warning: Newton–CG stopped after {} iterations without meeting the tolerance",
            map.iterations
        );
    }
    let n = problem.mesh_size();
    let mut report = json!({
        "problem": problem.path.display().to_string(),
        "problem_hash": problem.hash(),
        "forward_map": label,
        "noise_std": sigma,
        "data": data,
        "map": {
            "converged": map.converged,
            "iterations": map.iterations,
            "cost": map.cost,
            "evaluations": map.evaluations,
            "incremental_solves": map.incremental_solves,
            "wall_s": map.wall_s,
            "relative_error_to_truth": relative_difference(&map.m, &m_true),
            "history": map.history,
        },
    });
    let newton_g: Vec<f64> = map.history.iter().map(|r| r.gradient_norm).collect();
    write_text(
        &out.join("newton.svg"),
        &semilogy(
            "Newton–CG: ‖g‖_C per iteration",
            "iteration",
            "‖g‖_C",
            &[Series {
                name: "gradient norm",
                values: &newton_g,
            }],
        ),
    )?;
    write_text(
        &out.join("map.svg"),
        &heat_map(&format!("MAP point ({label})"), n, &map.m),
    )?;
    write_text(
        &out.join("true.svg"),
        &heat_map("true parameter", n, &m_true),
    )?;
    // Delayed acceptance targets the PDE posterior: its proposals are centred at the PDE MAP,
    // found by a few PDE Newton steps warm-started at the surrogate MAP; the Hessian (the
    // expensive part: hundreds of Hessian actions) stays the surrogate's.
    let center = if method == Method::Mcmc && kernel.is_delayed() && !is_pde {
        eprintln!("[{label}] refining the MAP with the PDE (warm start) …");
        let refined = map_newton_cg(&pde_post, &map.m, &opts.newton_settings())?;
        report["map_pde_refined"] = json!({
            "iterations": refined.iterations,
            "cost": refined.cost,
            "evaluations": refined.evaluations,
            "incremental_solves": refined.incremental_solves,
            "wall_s": refined.wall_s,
            "relative_difference_to_surrogate_map": relative_difference(&map.m, &refined.m),
        });
        refined.m
    } else {
        map.m.clone()
    };
    let mut laplace_variance = vec![];
    let mut laplace = None;
    if method != Method::Map {
        eprintln!("[{label}] Laplace approximation (rank {}) …", opts.rank);
        let t = Instant::now();
        let point = post.linearize(&center)?;
        let lap = Laplace::at(&post, &point, &center, opts.rank, 10, opts.seed)?;
        laplace_variance = lap.pointwise_variance(&prior_pointwise_variance(&prior));
        let ev = lap.eigenvalues.to_vec();
        write_text(
            &out.join("eigenvalues.svg"),
            &semilogy(
                "Prior-preconditioned GN Hessian eigenvalues",
                "index",
                "λ",
                &[Series {
                    name: "λ_i",
                    values: &ev,
                }],
            ),
        )?;
        write_text(
            &out.join("laplace_variance.svg"),
            &heat_map(
                &format!("Laplace pointwise variance ({label})"),
                n,
                &laplace_variance,
            ),
        )?;
        report["laplace"] = json!({
            "rank": lap.eigenvalues.len(),
            "eigenvalues": ev,
            "wall_s": t.elapsed().as_secs_f64(),
        });
        lap.save(&out.join("laplace"), &problem.hash())?;
        laplace = Some(lap);
    }
    let mut outcome = Outcome {
        report: Value::Null,
        m_map: map.m.clone(),
        mean: None,
        variance: None,
        laplace_variance: laplace_variance.clone(),
        wall_s: 0.0,
        cost: RunCost::default(),
        ess_min: None,
        chain_spread: None,
        moment_errors: None,
    };
    let mut fields = vec![
        PointField {
            name: "m_true",
            components: 1,
            values: &m_true,
        },
        PointField {
            name: "m_map",
            components: 1,
            values: &map.m,
        },
    ];
    if !laplace_variance.is_empty() {
        fields.push(PointField {
            name: "laplace_variance",
            components: 1,
            values: &laplace_variance,
        });
    }
    let (mut mean, mut variance) = (vec![], vec![]);
    let pde_solves_so_far = || {
        if is_pde {
            post.evaluations()
        } else {
            pde_post.evaluations()
        }
    };
    outcome.cost.setup_wall_s = started.elapsed().as_secs_f64();
    outcome.cost.setup_pde_solves = pde_solves_so_far();
    if method == Method::Mcmc {
        let uses_subspace = kernel.is_mmala() || kernel.is_hmc();
        if opts.subspace.is_some() && !uses_subspace {
            eprintln!(
                "[{label}] note: --subspace is used by the mmala, da-mmala, hmc and da-hmc kernels only; ignored for {}",
                kernel_name(kernel)
            );
        }
        let subspace = opts
            .subspace
            .as_ref()
            .filter(|_| uses_subspace)
            .map(|dir| load_subspace(dir, &prior))
            .transpose()?;
        let lap = laplace.as_ref().expect("computed for mcmc");
        let step = opts.step.unwrap_or(match kernel {
            KernelKind::Pcn => 0.1,
            KernelKind::Mala => 0.2,
            KernelKind::Gpcn => 0.5,
            KernelKind::Da => 0.3,
            KernelKind::Mmala => 0.5,
            KernelKind::DaMmala => 0.5,
            KernelKind::DaSubchain => 0.25,
            KernelKind::Hmc | KernelKind::DaHmc => 0.5,
        });
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
        let target = match kernel {
            KernelKind::Da | KernelKind::DaMmala | KernelKind::DaSubchain | KernelKind::DaHmc => {
                Target {
                    exact: &pde_post,
                    screen: Some(&post),
                    laplace: lap,
                    subspace: subspace.as_ref(),
                }
            }
            _ => Target {
                exact: &post,
                screen: None,
                laplace: lap,
                subspace: subspace.as_ref(),
            },
        };
        if kernel.is_delayed() && is_pde {
            return Err(Error::invalid(
                "command line",
                "--kernel",
                "pcn, mala, gpcn, mmala or hmc with --pde (da, da-mmala, da-subchain and da-hmc need --surrogate)",
                format!("{kernel:?}"),
            ));
        }
        let mut center_bytes: Vec<u8> = center.iter().flat_map(|v| v.to_le_bytes()).collect();
        if let Some(v) = &subspace {
            center_bytes.extend(v.iter().flat_map(|v| v.to_le_bytes()));
        }
        let fingerprint = format!(
            // not the chain length: a longer run continues a shorter one
            "v4-{}-{}-{label}-{kernel:?}-{step}-{}-{}-{}-{}-{}-{}-{}-{}",
            problem.hash(),
            opts.true_seed,
            opts.burn_in,
            opts.chains,
            opts.seed,
            opts.rank,
            settings.subchain,
            settings.leapfrog_steps,
            settings.leapfrog_size,
            crate::io::checksum::hex(&center_bytes)
        );
        let bar = indicatif::ProgressBar::new(((opts.samples + opts.burn_in) * opts.chains) as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "MCMC {bar:30} {pos}/{len} steps [{elapsed}<{eta}]",
            )
            .expect("valid template"),
        );
        let chains = run_chains(
            &target,
            &center,
            &settings,
            Some(out.join("chains")),
            &fingerprint,
            &bar,
        )?;
        bar.finish_and_clear();
        let saved = if opts.save_samples > 0 {
            let samples = read_saved_samples(&out.join("chains"), &chains, &settings)?;
            write_matrix(out.join("posterior_samples.npy"), &samples)?;
            json!({"file": "posterior_samples.npy", "every": opts.save_samples, "rows": samples.nrows()})
        } else {
            Value::Null
        };
        (mean, variance) = moments(&chains);
        // PDE solves and wall time of the chains (resumed chains included): the exact
        // posterior's evaluations when it is the PDE
        let chain_pde_solves: usize = if kernel.is_delayed() || is_pde {
            chains.iter().map(|c| c.exact_evaluations).sum()
        } else {
            0
        };
        // the elapsed time of the chains: they run `threads` at a time, each timed while the
        // others share the machine, so Σ wall / threads (= the slowest chain's wall when there
        // are no more chains than threads; twice it for 4 chains on 2 cores)
        let threads = rayon::current_num_threads().clamp(1, chains.len().max(1));
        let mcmc_wall = chains.iter().map(|c| c.wall_s).sum::<f64>() / threads as f64;
        let diag = diagnostics(&chains, mcmc_wall, chain_pde_solves);
        outcome.cost.mcmc_wall_s = mcmc_wall;
        outcome.cost.mcmc_pde_solves = chain_pde_solves;
        outcome.ess_min = diag["ess_min"].as_f64();
        outcome.chain_spread = chain_spread(&chains);
        outcome.moment_errors = moment_errors(&chains);
        write_chain_plots(&chains, out)?;
        write_text(
            &out.join("posterior_mean.svg"),
            &heat_map(&format!("posterior mean, MCMC ({label})"), n, &mean),
        )?;
        write_text(
            &out.join("posterior_variance.svg"),
            &heat_map(
                &format!("posterior pointwise variance, MCMC ({label})"),
                n,
                &variance,
            ),
        )?;
        report["mcmc"] = json!({
            "kernel": kernel,
            "step": step,
            "rho": (1.0 - step * step).sqrt(),
            "chains": opts.chains,
            "samples_per_chain": opts.samples,
            "burn_in": opts.burn_in,
            "wall_s": mcmc_wall,
            "diagnostics": diag,
            "relative_error_of_mean_to_truth": relative_difference(&mean, &m_true),
            "failed_proposals": chains.iter().flat_map(|c| c.failures.clone()).collect::<Vec<_>>(),
            "saved_samples": saved,
        });
    }
    if !mean.is_empty() {
        fields.push(PointField {
            name: "posterior_mean",
            components: 1,
            values: &mean,
        });
        fields.push(PointField {
            name: "posterior_variance",
            components: 1,
            values: &variance,
        });
    }
    write_vtu(out.join("fields.vtu"), &problem.mesh(), &fields)?;
    outcome.wall_s = started.elapsed().as_secs_f64();
    report["cost"] = json!({
        "wall_s": outcome.wall_s,
        "pde_solves": pde_solves_so_far(),
        "setup_wall_s": outcome.cost.setup_wall_s,
        "setup_pde_solves": outcome.cost.setup_pde_solves,
        "surrogate_calls": if is_pde { 0 } else { post.evaluations() },
    });
    write_text(
        &out.join("report.json"),
        &serde_json::to_string_pretty(&report).expect("serializable"),
    )?;
    if !mean.is_empty() {
        outcome.mean = Some(mean);
        outcome.variance = Some(variance);
    }
    outcome.report = report;
    Ok(outcome)
}

/// Acceptance rates, ESS / IACT per QoI, R̂, ESS per second and per PDE solve.
fn diagnostics(chains: &[ChainState], wall_s: f64, pde_solves: usize) -> Value {
    let k = chains[0].qoi.first().map_or(0, |q| q.len());
    let names: Vec<String> = (0..k)
        .map(|i| {
            if i == 0 {
                "misfit".into()
            } else {
                format!("laplace_coefficient_{i}")
            }
        })
        .collect();
    let mut per_qoi = Vec::new();
    let mut ess_min = f64::INFINITY;
    let mut r_hat_max: Option<f64> = None;
    for i in 0..k {
        let traces: Vec<Vec<f64>> = chains
            .iter()
            .map(|c| c.qoi.iter().map(|q| q[i]).collect())
            .collect();
        let ess: f64 = traces.iter().map(|t| effective_sample_size(t)).sum();
        let n: usize = traces.iter().map(Vec::len).sum();
        let refs: Vec<&[f64]> = traces.iter().map(|t| &t[..]).collect();
        ess_min = ess_min.min(ess);
        let r = r_hat(&refs);
        if let Some(r) = r {
            r_hat_max = Some(r_hat_max.map_or(r, |m| m.max(r)));
        }
        per_qoi.push(json!({
            "qoi": names[i],
            "ess": ess,
            "iact": n as f64 / ess.max(1e-300),
            "r_hat": r,
        }));
    }
    let proposals: usize = chains.iter().map(|c| c.proposals).sum();
    let stage1: usize = chains.iter().map(|c| c.stage1_accepted).sum();
    let accepted: usize = chains.iter().map(|c| c.accepted).sum();
    let subchain_steps: usize = chains.iter().map(|c| c.subchain_steps).sum();
    let subchain_accepted: usize = chains.iter().map(|c| c.subchain_accepted).sum();
    json!({
        "subchain_acceptance_rate": (subchain_steps > 0)
            .then(|| subchain_accepted as f64 / subchain_steps as f64),
        "proposals": proposals,
        "acceptance_rate": accepted as f64 / proposals.max(1) as f64,
        "stage1_acceptance_rate": stage1 as f64 / proposals.max(1) as f64,
        "stage2_acceptance_rate": accepted as f64 / stage1.max(1) as f64,
        "qoi": per_qoi,
        // R̂ < 1.1 on every QoI (Gelman–Rubin); ESS estimates of chains that have not mixed
        // (e.g. pCN stuck near different starting points) are not meaningful
        "r_hat_max": r_hat_max,
        "converged": r_hat_max.map(|r| r < R_HAT_CONVERGED),
        "ess_min": ess_min,
        "ess_per_second": ess_min / wall_s.max(1e-12),
        "pde_solves": pde_solves,
        "ess_per_pde_solve": if pde_solves > 0 { Some(ess_min / pde_solves as f64) } else { None },
    })
}

/// The R̂ below which the chains count as mixed.
const R_HAT_CONVERGED: f64 = 1.1;

fn write_chain_plots(chains: &[ChainState], out: &Path) -> Result<()> {
    let traces: Vec<Vec<f64>> = chains
        .iter()
        .map(|c| {
            c.qoi
                .iter()
                .map(|q| q.get(1).copied().unwrap_or(q[0]))
                .collect()
        })
        .collect();
    let names: Vec<String> = (0..chains.len()).map(|c| format!("chain {c}")).collect();
    // at most about 5000 points per chain in the plot (every k-th step of a long chain)
    let k = traces
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(0)
        .div_ceil(5000)
        .max(1);
    let thinned: Vec<Vec<f64>> = traces
        .iter()
        .map(|t| t.iter().step_by(k).copied().collect())
        .collect();
    let series: Vec<Series> = thinned
        .iter()
        .zip(&names)
        .map(|(t, n)| Series { name: n, values: t })
        .collect();
    let x_label = if k == 1 {
        "step".to_string()
    } else {
        format!("step / {k}")
    };
    write_text(
        &out.join("trace.svg"),
        &lines(
            "Trace of the leading Laplace coefficient v₁ᵀR(m − m_MAP)",
            &x_label,
            "coefficient",
            &series,
        ),
    )?;
    let acf: Vec<Vec<f64>> = traces.iter().map(|t| autocorrelation(t, 200)).collect();
    let series: Vec<Series> = acf
        .iter()
        .zip(&names)
        .map(|(t, n)| Series { name: n, values: t })
        .collect();
    write_text(
        &out.join("autocorrelation.svg"),
        &lines(
            "Autocorrelation of the leading Laplace coefficient",
            "lag + 1",
            "ρ",
            &series,
        ),
    )
}

/// The mMALA subspace V from `dir/decoder.npy`, checked to be R-orthonormal (Vᵀ R V = I).
fn load_subspace(dir: &Path, prior: &crate::prior::BiLaplacianPrior) -> Result<Array2<f64>> {
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

fn load_surrogate(dir: &Path, problem: &Problem) -> Result<Surrogate> {
    let s = Surrogate::load(dir)?;
    s.check_problem(problem, dir)?;
    Ok(s)
}

pub fn run(args: InferArgs) -> Result<()> {
    let problem = Problem::load(&args.options.problem)?;
    let pde = problem.model()?;
    let surrogate = args
        .surrogate
        .as_ref()
        .map(|d| load_surrogate(d, &problem))
        .transpose()?;
    let mut anchored = None;
    let (forward, label): (&dyn DifferentiableMap, String) = match &surrogate {
        Some(s) => (
            s.map(&mut anchored),
            format!(
                "surrogate {}",
                args.surrogate.as_ref().expect("set").display()
            ),
        ),
        None => (pde.as_ref(), "PDE".into()),
    };
    let kernel = args.kernel.unwrap_or(if surrogate.is_some() {
        KernelKind::DaSubchain
    } else {
        KernelKind::Gpcn
    });
    let outcome = run_inference(
        &problem,
        &args.options,
        forward,
        pde.as_ref(),
        &label,
        args.method,
        kernel,
        &args.out,
    )?;
    let r = &outcome.report;
    eprintln!(
        "MAP: {} Newton iterations, relative error to the true parameter {:.3}",
        r["map"]["iterations"],
        r["map"]["relative_error_to_truth"]
            .as_f64()
            .unwrap_or(f64::NAN)
    );
    if let Some(m) = r.get("mcmc") {
        let d = &m["diagnostics"];
        eprintln!(
            "MCMC ({}): acceptance {:.2} (stage 1 {:.2}), min ESS {:.0}, {:.1} ESS/s, {} PDE solves",
            kernel_name(kernel),
            d["acceptance_rate"].as_f64().unwrap_or(0.0),
            d["stage1_acceptance_rate"].as_f64().unwrap_or(0.0),
            d["ess_min"].as_f64().unwrap_or(0.0),
            d["ess_per_second"].as_f64().unwrap_or(0.0),
            d["pde_solves"],
        );
        if d["converged"] == false {
            eprintln!(
                "warning: the chains have not mixed (R̂ = {:.2} ≥ {R_HAT_CONVERGED} on some QoI): their ESS and moments are not reliable; run longer",
                d["r_hat_max"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    eprintln!(
        "done in {:.1} s. Report: {}/report.json; plots: {}/*.svg (map, true, posterior_mean, posterior_variance, laplace_variance, eigenvalues, trace, autocorrelation, newton); fields for ParaView: {}/fields.vtu",
        outcome.wall_s,
        args.out.display(),
        args.out.display(),
        args.out.display()
    );
    if args.method != Method::Map {
        eprintln!(
            "Laplace approximation: {}/laplace/ (training data around it: dino generate --laplace)",
            args.out.display()
        );
    }
    Ok(())
}

fn kernel_name(k: KernelKind) -> &'static str {
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
    let pde = problem.model()?;
    let surrogate = load_surrogate(&args.surrogate, &problem)?;
    if args.pde_kernel.is_delayed() {
        return Err(Error::invalid(
            "command line",
            "--pde-kernel",
            "pcn, mala, gpcn, mmala or hmc",
            format!("{:?}", args.pde_kernel),
        ));
    }
    if args.pde_samples == Some(0) {
        return Err(Error::invalid(
            "command line",
            "--pde-samples",
            "at least one step per chain",
            0,
        ));
    }
    let pde_options = InferenceOptions {
        samples: args.pde_samples.unwrap_or(args.options.samples),
        ..args.options.clone()
    };
    let p = run_inference(
        &problem,
        &pde_options,
        pde.as_ref(),
        pde.as_ref(),
        "PDE",
        Method::Mcmc,
        args.pde_kernel,
        &args.out.join("pde"),
    )?;
    let mut anchored = None;
    let s = run_inference(
        &problem,
        &args.options,
        surrogate.map(&mut anchored),
        pde.as_ref(),
        "DINO",
        Method::Mcmc,
        args.dino_kernel,
        &args.out.join("surrogate"),
    )?;
    let (pm, sm) = (
        p.mean.as_deref().unwrap_or(&[]),
        s.mean.as_deref().unwrap_or(&[]),
    );
    let (pv, sv) = (
        p.variance.as_deref().unwrap_or(&[]),
        s.variance.as_deref().unwrap_or(&[]),
    );
    let ess_rate = |o: &Outcome| {
        o.report["mcmc"]["diagnostics"]["ess_per_second"]
            .as_f64()
            .unwrap_or(0.0)
    };
    let (rate_p, rate_s) = (ess_rate(&p), ess_rate(&s));
    let offline = surrogate
        .record
        .training
        .as_ref()
        .map_or(0.0, |t| t.wall_s + t.data_wall_s);
    // ESS at which DINO (offline + online) breaks even with the PDE chain: E/rate_p = offline + E/rate_s
    let break_even = if rate_s > rate_p && rate_p > 0.0 {
        Some(offline / (1.0 / rate_p - 1.0 / rate_s))
    } else {
        None
    };
    // the differences Monte-Carlo error alone would give, were both chains exact
    let floor = match (&p.moment_errors, &s.moment_errors) {
        (Some((pe_m, pe_v)), Some((se_m, se_v))) => Some((
            monte_carlo_floor(se_m, pe_m, pm),
            monte_carlo_floor(se_v, pe_v, pv),
        )),
        _ => None,
    };
    let summary = json!({
        "map_relative_difference": relative_difference(&s.m_map, &p.m_map),
        "posterior_mean_relative_difference": relative_difference(sm, pm),
        "posterior_variance_relative_difference": relative_difference(sv, pv),
        "laplace_variance_relative_difference": relative_difference(&s.laplace_variance, &p.laplace_variance),
        "pde": merge(json!({ "kernel": args.pde_kernel, "ess_min": p.ess_min, "ess_per_second": rate_p }), cost_json(&p)),
        "dino": merge(json!({ "kernel": args.dino_kernel, "samples_pde_posterior": args.dino_kernel.is_delayed(), "ess_min": s.ess_min, "ess_per_second": rate_s, "offline_s": offline }), cost_json(&s)),
        "ess_per_second_ratio": rate_s / rate_p.max(1e-300),
        "chain_spread": {
            "pde": p.chain_spread.map(|(m, v)| json!({"mean": m, "variance": v})),
            "dino": s.chain_spread.map(|(m, v)| json!({"mean": m, "variance": v})),
        },
        "monte_carlo_floor": floor.map(|(m, v)| json!({"mean": m, "variance": v})),
        "break_even_effective_samples": break_even,
    });
    write_text(
        &args.out.join("compare.json"),
        &serde_json::to_string_pretty(&summary).expect("serializable"),
    )?;
    let f = |v: &Value| v.as_f64().map_or("-".to_string(), |x| format!("{x:.4}"));
    let per_solve = |o: &Outcome| {
        o.report["mcmc"]["diagnostics"]["ess_per_pde_solve"]
            .as_f64()
            .map_or("-".to_string(), |e| format!("{e:.2e}"))
    };
    let md = format!(
        "# PDE vs DINO inference: {}\n\n| | PDE ({:?}) | DINO ({:?}) |\n|---|---|---|\n| MAP + Laplace: wall time (s) | {:.1} | {:.1} |\n| MAP + Laplace: PDE solves | {} | {} |\n| MCMC, all steps (resumed ones included): elapsed time (s) | {:.1} | {:.1} |\n| MCMC, all steps: PDE solves | {} | {} |\n| min ESS | {} | {} |\n| ESS / s | {:.2} | {:.2} |\n| ESS per PDE solve | {} | {} |\n\n- MAP relative difference: {}\n- posterior mean relative difference: {}\n- posterior variance relative difference: {}\n- Laplace variance relative difference: {}\n- ESS/s ratio (DINO / PDE): {:.1}\n- offline cost of the surrogate (data + training): {:.0} s; break-even after {} effective samples\n",
        problem.path.display(), args.pde_kernel, args.dino_kernel,
        p.cost.setup_wall_s, s.cost.setup_wall_s, p.cost.setup_pde_solves, s.cost.setup_pde_solves,
        p.cost.mcmc_wall_s, s.cost.mcmc_wall_s, p.cost.mcmc_pde_solves, s.cost.mcmc_pde_solves,
        p.ess_min.map_or("-".into(), |e| format!("{e:.0}")), s.ess_min.map_or("-".into(), |e| format!("{e:.0}")),
        rate_p, rate_s, per_solve(&p), per_solve(&s),
        f(&summary["map_relative_difference"]), f(&summary["posterior_mean_relative_difference"]),
        f(&summary["posterior_variance_relative_difference"]), f(&summary["laplace_variance_relative_difference"]),
        rate_s / rate_p.max(1e-300), offline, break_even.map_or("-".into(), |b| format!("{b:.0}")),
    );
    let spread = |o: &Outcome| {
        o.chain_spread
            .map_or("- (one chain)".to_string(), |(m, v)| {
                format!("mean {m:.4}, variance {v:.4}")
            })
    };
    let md = format!(
        "{md}- largest difference between two chains of the same sampler: PDE {}; DINO {}\n- differences that Monte-Carlo error alone gives (from the spread between chains, were both samplers exact): {}\n",
        spread(&p),
        spread(&s),
        floor.map_or("- (needs two chains per sampler)".to_string(), |(m, v)| {
            format!("mean {m:.4}, variance {v:.4}")
        })
    );
    let r_hat = |o: &Outcome| {
        o.report["mcmc"]["diagnostics"]["r_hat_max"]
            .as_f64()
            .map_or("-".to_string(), |r| format!("{r:.3}"))
    };
    let md = format!(
        "{md}- largest R̂ over the QoIs (below {R_HAT_CONVERGED}: the chains have mixed): PDE {}; DINO {}\n",
        r_hat(&p),
        r_hat(&s)
    );
    let md = if args.dino_kernel.is_delayed() {
        md
    } else {
        format!("{md}- the DINO chain ({:?}) runs on the surrogate alone: it samples the surrogate's approximate posterior, so its differences to the PDE chain include the surrogate's bias\n", args.dino_kernel)
    };
    write_text(&args.out.join("compare.md"), &md)?;
    eprint!("{md}");
    eprintln!(
        "wrote {}/compare.md, compare.json, pde/, surrogate/",
        args.out.display()
    );
    Ok(())
}
