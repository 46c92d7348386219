//! `dino generate`: training data (m ~ prior, q(m), Jacobians) in resumable chunks.

use std::path::PathBuf;

use clap::Args;

use crate::data::control::ControlRegion;
use crate::data::{generate, GenerateOptions, JacobianKind};
use crate::error::{Error, Result};
use crate::map::ControlledMap;

/// Arguments of `dino generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Problem file (TOML).
    #[arg(long)]
    problem: PathBuf,
    /// Samples in the whole data set.
    #[arg(long)]
    samples: usize,
    /// Seed: sample i depends on (seed, i) only.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder (re-running the same command resumes it).
    #[arg(long)]
    out: PathBuf,
    /// Jacobian data per sample: none, full (d_Q × d_M), projected (J V_r, needs --basis).
    #[arg(long, value_enum, default_value_t = JacobianKind::Full)]
    jacobian: JacobianKind,
    /// Input basis V_r (.npy, d_M × r) for --jacobian projected.
    #[arg(long)]
    basis: Option<PathBuf>,
    /// Generate the K-th of N contiguous slices of the samples, e.g. 2/4 (for job arrays).
    #[arg(long, default_value = "1/1")]
    shard: String,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Override the problem's mesh size.
    #[arg(long)]
    mesh: Option<i64>,
    /// Samples per chunk (the unit of writing and resuming).
    #[arg(long, default_value_t = 32)]
    chunk_size: usize,
    /// Record samples whose solve fails in the manifest and go on (default: stop at the first).
    #[arg(long)]
    allow_failures: bool,
    /// Draw m from a Laplace approximation N(m_MAP, Γ_post) instead of the prior: the `laplace/`
    /// folder of a `dino infer --method laplace` run. Training data where the posterior lives,
    /// for the surrogate that screens delayed-acceptance MCMC on that data set.
    #[arg(long)]
    laplace: Option<PathBuf>,
    /// With --laplace: inflate the noise variance τ times, N(m_MAP, (R + H/τ)⁻¹), so that the
    /// data cover the posterior's non-Gaussian tails (√τ times the Laplace spread in the
    /// informed directions).
    #[arg(long, default_value_t = 1.0)]
    temper: f64,
    /// Take the parameters from the rows of this .npy (n × d_M, n ≥ --samples; sample i is row i)
    /// instead of drawing them: e.g. the `posterior_samples.npy` of `dino infer --save-samples`,
    /// training data exactly where a posterior lives.
    #[arg(long)]
    parameters: Option<std::path::PathBuf>,
    /// Control-surrogate data for a problem with [control]: (m, z) samples, states u(z, m), a POD
    /// basis of the states and the control Jacobians projected on it.
    #[arg(long)]
    control: bool,
    /// POD rank of the states (with --control).
    #[arg(long, default_value_t = 100)]
    pod_rank: usize,
    /// With --control: draw the controls around this one (.npy, length n_z; e.g. the
    /// `control.npy` of a `dino ouu` run) instead of in the whole box: data refined where a
    /// surrogate's optimum lies.
    #[arg(long)]
    control_around: Option<PathBuf>,
    /// Half-width of the box around --control-around (intersected with the bounds).
    #[arg(long, default_value_t = 1.0)]
    control_radius: f64,
}

fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let bad = || Error::invalid("command line", "--shard", "K/N with 1 ≤ K ≤ N, e.g. 2/4", s);
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

pub fn run(args: GenerateArgs) -> Result<()> {
    let problem = super::load_problem(&args.problem, args.mesh)?;
    if args.temper != 1.0 && args.laplace.is_none() {
        return Err(Error::invalid(
            "command line",
            "--temper",
            "--temper together with --laplace (it widens a Laplace approximation)",
            args.temper,
        ));
    }
    if args.control && args.laplace.is_some() {
        return Err(Error::invalid(
            "command line",
            "--laplace",
            "no --laplace with --control (control data are drawn from the prior)",
            "both",
        ));
    }
    if args.control && args.parameters.is_some() {
        return Err(Error::invalid(
            "command line",
            "--parameters",
            "no --parameters with --control (control data are drawn from the prior)",
            "both",
        ));
    }
    if args.control_around.is_some() && !args.control {
        return Err(Error::invalid(
            "command line",
            "--control-around",
            "--control-around together with --control",
            "without --control",
        ));
    }
    if args.control {
        let region = match &args.control_around {
            None => None,
            Some(path) => {
                let control = problem.control_problem()?;
                let centre =
                    crate::io::npy::read_vector(path, control.control_dim(), "--control-around")?;
                Some(ControlRegion::new(
                    centre,
                    args.control_radius,
                    control.bounds(),
                    &path.display().to_string(),
                )?)
            }
        };
        let data = crate::data::generate_control(
            &problem,
            args.samples,
            args.seed,
            args.pod_rank,
            region.as_ref(),
            &args.out,
            true,
        )?;
        eprintln!(
            "{} control samples in {:.1} s (forward) + {:.1} s (control Jacobians); wrote {}/m.npy, z.npy, u.npy, pod_basis.npy, control_jacobian.npy, manifest.json",
            data.manifest.samples,
            data.manifest.forward_s,
            data.manifest.jacobian_s,
            args.out.display()
        );
        return Ok(());
    }
    let options = GenerateOptions {
        samples: args.samples,
        seed: args.seed,
        out: args.out,
        jacobian: args.jacobian,
        basis: args.basis,
        shard: parse_shard(&args.shard)?,
        chunk_size: args.chunk_size,
        allow_failures: args.allow_failures,
        progress: true,
        laplace: args.laplace,
        temper: args.temper,
        parameters: args.parameters,
    };
    let threads = args.threads.unwrap_or(0);
    if args.threads == Some(0) {
        return Err(Error::invalid(
            "command line",
            "--threads",
            "a positive number",
            0,
        ));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::numerical("thread pool", e.to_string()))?;
    pool.install(|| generate(&problem, &options)).map(|_| ())
}
