//! `dino bases`: reduced bases (active subspace, KLE, POD, derivative outer product).

use std::path::PathBuf;

use clap::Args;

use crate::bases::{
    active_subspace_from_data, active_subspace_from_map, jjt, kle, pod, BasisKind, EigenSettings,
};
use crate::error::{Error, Result};

/// Arguments of `dino bases`.
#[derive(Debug, Args)]
pub struct BasesArgs {
    /// Problem file (TOML).
    #[arg(long)]
    problem: PathBuf,
    /// active-subspace (E[JᵀΓ⁻¹J] v = λ R v), kle (prior), pod (observables), jjt (E[J Jᵀ]).
    #[arg(long, value_enum)]
    kind: BasisKind,
    /// Number of basis vectors.
    #[arg(long)]
    rank: usize,
    /// Extra random vectors of the randomized eigensolver.
    #[arg(long, default_value_t = 10)]
    oversampling: usize,
    /// Seed of the random test vectors (and of the pilot samples).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Data folder(s) from `dino generate` (pod, jjt; active-subspace from stored full Jacobians).
    #[arg(long, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Active subspace from this many PDE linearizations at prior samples instead of data.
    #[arg(long)]
    pilot: Option<usize>,
    /// Override the problem's mesh size.
    #[arg(long)]
    mesh: Option<i64>,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: BasesArgs) -> Result<()> {
    let problem = super::load_problem(&args.problem, args.mesh)?;
    let data = if args.data.is_empty() {
        None
    } else {
        Some(super::data::load_for(&problem, &args.data)?)
    };
    let need_data = |what: &str| {
        Error::invalid(
            "command line",
            "--data",
            format!("a data folder ({what})"),
            "none",
        )
    };
    let eig = EigenSettings {
        rank: args.rank,
        oversampling: args.oversampling,
        seed: args.seed,
    };
    let basis = match (args.kind, &data, args.pilot) {
        (BasisKind::Kle, _, _) => kle(&problem.prior()?, eig, &problem.hash())?,
        (BasisKind::ActiveSubspace, _, Some(pilot)) => {
            let model = problem.model()?;
            let prior = problem.prior()?;
            active_subspace_from_map(
                model.as_ref(),
                &prior,
                pilot,
                &problem.noise_model()?,
                eig,
                &problem.hash(),
            )?
        }
        (BasisKind::ActiveSubspace, Some(d), None) => {
            active_subspace_from_data(d, &problem.prior()?, &problem.noise_model()?, eig)?
        }
        (BasisKind::ActiveSubspace, None, None) => {
            return Err(need_data("or --pilot N for PDE samples"))
        }
        (BasisKind::Pod, Some(d), _) => pod(d, args.rank)?,
        (BasisKind::Jjt, Some(d), _) => jjt(d, args.rank)?,
        (BasisKind::Pod | BasisKind::Jjt, None, _) => {
            return Err(need_data("with the observables and Jacobians to reduce"))
        }
    };
    if basis.info.rank < args.rank {
        eprintln!(
            "warning: the operator has rank {} only (asked for --rank {}): the basis has {} vectors",
            basis.info.rank, args.rank, basis.info.rank
        );
    }
    basis.save(&args.out)?;
    let ev = &basis.eigenvalues;
    eprintln!(
        "{} basis of rank {} ({} samples): eigenvalues {:.3e} … {:.3e}; wrote {}/decoder.npy, encoder.npy, eigenvalues.npy, eigenvalues.svg",
        basis.info.kind.name(),
        basis.info.rank,
        basis.info.samples,
        ev[0],
        ev[ev.len() - 1],
        args.out.display()
    );
    Ok(())
}
