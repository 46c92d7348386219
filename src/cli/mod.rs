//! The `dino` command line.

mod bases;
mod data;
mod generate;
mod solve;

use clap::{Parser, Subcommand};

use crate::error::Result;

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
}

/// Parses the command line and runs the command. Argument errors exit with code 2 (clap).
pub fn run() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Solve(args) => solve::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Data(args) => data::run(args),
        Command::Bases(args) => bases::run(args),
    }
}
