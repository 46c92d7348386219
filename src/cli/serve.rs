//! `dino serve`: the problem's PDE map, its surrogates and its log-posterior as UM-Bridge models
//! ([`crate::umbridge`]), for any UM-Bridge client (PyMC, emcee, MUQ, QMCPy, tinyDA, …).

use std::path::PathBuf;

use clap::Args;

use crate::error::Result;
use crate::inference::Posterior;
use crate::misfit::GaussianMisfit;
use crate::nn::Surrogate;
use crate::umbridge::server::{serve, Served};
use crate::umbridge::{LogPosteriorModel, MapModel};
use crate::workflow::infer::{evidence, load_surrogate, InferOptions};

/// Arguments of `dino serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Problem file (TOML): served as `forward` (m ↦ q) and, with `[noise]`, as `posterior`
    /// (log π(m | d) for the synthetic data of `dino infer`'s defaults: true seed 0, seed 0).
    #[arg(long)]
    problem: PathBuf,
    /// Trained surrogate folder(s), served as `surrogate` (one) or under their folder names.
    #[arg(long, num_args = 1..)]
    surrogate: Vec<PathBuf>,
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 4242)]
    port: u16,
    /// Requests served at the same time (each with its own solver state).
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Override the problem's mesh size.
    #[arg(long)]
    mesh: Option<i64>,
}

pub fn run(args: ServeArgs) -> Result<()> {
    let problem = super::load_problem(&args.problem, args.mesh)?;
    let pde = problem.model()?;
    let prior = problem.prior()?;
    let surrogates: Vec<Surrogate> = args
        .surrogate
        .iter()
        .map(|dir| load_surrogate(dir, &problem))
        .collect::<Result<_>>()?;
    let posterior = match problem.spec.noise.is_some() || problem.observed().is_some() {
        true => {
            let evidence = evidence(&problem, pde.as_ref(), &InferOptions::default())?;
            let misfit = GaussianMisfit::with_noise(evidence.data, evidence.noise)?;
            Some(Posterior::new(pde.as_ref(), &prior, misfit)?)
        }
        false => None,
    };
    let mut anchored: Vec<_> = surrogates.iter().map(|_| None).collect();
    let mut models = vec![Served {
        name: "forward".into(),
        model: Box::new(MapModel::new(pde.as_ref(), prior.mean())?),
    }];
    for ((s, dir), slot) in surrogates
        .iter()
        .zip(&args.surrogate)
        .zip(anchored.iter_mut())
    {
        let name = match args.surrogate.len() {
            1 => "surrogate".to_string(),
            _ => dir
                .file_name()
                .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into()),
        };
        models.push(Served {
            name,
            model: Box::new(MapModel::new(s.map(slot), prior.mean())?),
        });
    }
    if let Some(post) = &posterior {
        models.push(Served {
            name: "posterior".into(),
            model: Box::new(LogPosteriorModel::new(post)),
        });
    }
    serve(&models, &args.host, args.port, args.threads)
}
