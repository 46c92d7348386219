//! The `dino` command line.

mod bases;
mod data;
mod generate;
mod infer;
mod ouu;
mod serve;
mod solve;
mod study;
mod train;

use clap::{Parser, Subcommand};

use crate::error::Result;

pub(crate) use crate::workflow::inputs::load_problem;

/// Derivative-informed neural operators for PDE-constrained outer-loop problems.
#[derive(Debug, Parser)]
#[command(name = "dino", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Solve the PDE of a problem at one parameter: q(m), J v, the full Jacobian, the state as .vtu.
    Solve(solve::SolveArgs),
    /// Generate training data: m ~ prior, q(m) and Jacobians, in resumable, shardable chunks.
    Generate(generate::GenerateArgs),
    /// Inspect (`info`) or join (`merge`) data folders.
    Data(data::DataArgs),
    /// Reduced bases: active subspace, KLE, POD, derivative outer product (with eigenvalue plots).
    Bases(bases::BasesArgs),
    /// Train a DIPNet surrogate (L2, H1, reduced-H1 or MS loss) into a model folder.
    Train(train::TrainArgs),
    /// Test accuracies of a surrogate on a data set (L2, H1, reduced H1).
    Eval(train::EvalArgs),
    /// The paper's accuracy study: losses × training-set sizes × DIPNet ranks.
    Study(study::StudyArgs),
    /// Bayesian inversion (MAP, Laplace, MCMC) with the PDE or a surrogate.
    Infer(infer::InferArgs),
    /// The same inference with the PDE and with a surrogate, side by side.
    Compare(infer::CompareArgs),
    /// Risk-averse optimal control under uncertainty (mean, mean+variance, CVaR) with the PDE or
    /// a control surrogate.
    Ouu(ouu::OuuArgs),
    /// Serve the PDE map, surrogates and log-posterior as UM-Bridge models over HTTP.
    Serve(serve::ServeArgs),
}

/// Parses the command line and runs the command. Argument errors exit with code 2 (clap).
pub fn run() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Solve(args) => solve::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Data(args) => data::run(args),
        Command::Bases(args) => bases::run(args),
        Command::Train(args) => train::run(args),
        Command::Eval(args) => train::eval(args),
        Command::Study(args) => study::run(args),
        Command::Infer(args) => infer::run(args),
        Command::Compare(args) => infer::compare(args),
        Command::Ouu(args) => ouu::run(args),
        Command::Serve(args) => serve::run(args),
    }
}
