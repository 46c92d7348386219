//! `dino study`: the arguments of [`crate::workflow::study`] (the paper's accuracy study, Figs
//! 5–13), its progress lines, and its files (study.csv, study.md, accuracy_*.svg) written after
//! every trained configuration.

use std::path::PathBuf;

use clap::Args;

use crate::error::{Error, Result};
use crate::report::study::write_study;
use crate::workflow::coordinates::LossName;
use crate::workflow::study::{self, StudyArch, StudyConfig, StudyOutcome};

/// Arguments of `dino study`.
#[derive(Debug, Args)]
pub struct StudyArgs {
    /// Problem file (TOML).
    #[arg(long)]
    problem: PathBuf,
    /// Training data (projected on the basis's encoder, or full Jacobians); the first N samples
    /// are used for each training-set size N. The generic network's Jacobian losses need full
    /// Jacobians; with projected data it is trained with the L2 loss only.
    #[arg(long, required = true, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Test data (full test Jacobians are computed once with the PDE when not stored).
    #[arg(long, required = true, num_args = 1..)]
    test: Vec<PathBuf>,
    /// Input basis folder (active subspace); needed for DIPNets.
    #[arg(long)]
    basis: Option<PathBuf>,
    /// Training-set sizes.
    #[arg(long, value_delimiter = ',', default_value = "64,256,1024,4096")]
    sizes: Vec<usize>,
    /// Losses.
    #[arg(
        long,
        value_delimiter = ',',
        value_enum,
        default_value = "l2,h1,reduced-h1,ms"
    )]
    losses: Vec<LossName>,
    /// Networks: DIPNet ranks r_M-r_Q, or `generic` (all d_M inputs, r_Q = min(50, d_Q)).
    #[arg(long, value_delimiter = ',', default_value = "100-50,50-50,generic")]
    archs: Vec<String>,
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    /// At least this many optimizer steps per configuration (small N gets more epochs, so that
    /// every size is trained to a comparable number of Adam steps).
    #[arg(long, default_value_t = 3200)]
    min_steps: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder (study.csv, study.md, accuracy_*.svg).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: StudyArgs) -> Result<()> {
    let archs: Vec<StudyArch> = args
        .archs
        .iter()
        .map(|a| a.parse())
        .collect::<Result<_>>()?;
    let config = StudyConfig {
        problem: args.problem,
        data: args.data,
        test: args.test,
        basis: args.basis,
        sizes: args.sizes,
        losses: args.losses,
        archs,
        epochs: args.epochs,
        min_steps: args.min_steps,
        batch_size: args.batch_size,
        lr: args.lr,
        seed: args.seed,
    };
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let mut on_row = |outcome: &StudyOutcome| -> Result<()> {
        let row = outcome.rows.last().expect("called after a row");
        eprintln!(
            "{} {:>10} N = {:>5}: L2 {:.2}%  H1 {:.2}%  reduced H1 {:.2}%  ({:.0} s)",
            row.arch,
            row.loss,
            row.n_train,
            100.0 * row.l2_accuracy,
            100.0 * row.h1_accuracy,
            100.0 * row.reduced_h1_accuracy,
            row.wall_s
        );
        write_study(&args.out, &config, outcome)
    };
    study::run(&config, &mut on_row)?;
    eprintln!(
        "wrote {}/study.csv, study.md, accuracy_l2.svg, accuracy_h1.svg",
        args.out.display()
    );
    Ok(())
}
