//! `dino data`: inspect and join data folders.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::data::{load, merge};
use crate::error::Result;

pub(crate) use crate::workflow::inputs::load_data_for as load_for;

/// Arguments of `dino data`.
#[derive(Debug, Args)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// Join the shard folders of one data set into one folder (checks problem, seed, checksums).
    Merge {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Shard folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
    /// Verify and summarize data folders (one data set, possibly in shards).
    Info {
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
}

pub fn run(args: DataArgs) -> Result<()> {
    match args.command {
        DataCommand::Merge { out, dirs } => {
            let manifest = merge(&dirs, &out)?;
            eprintln!(
                "merged {} folders into {}: samples {}..{}, {} chunks, {} failed samples",
                dirs.len(),
                out.display(),
                manifest.start,
                manifest.end,
                manifest.chunks.len(),
                manifest.failures.len()
            );
        }
        DataCommand::Info { dirs } => {
            let data = load(&dirs)?;
            let m = &data.manifest;
            let summary = serde_json::json!({
                "problem": m.problem,
                "seed": m.seed,
                "samples": data.len(),
                "failed_samples": data.failures.len(),
                "failures": data.failures,
                "jacobian": m.jacobian,
                "arrays": m.arrays,
                "checksums": "verified",
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&summary).expect("serializable")
            );
            if !data.failures.is_empty() {
                eprintln!("{} samples failed and are left out", data.failures.len());
            }
        }
    }
    Ok(())
}
