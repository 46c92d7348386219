//! `manifest.json`: what a data folder holds and how it was made.
//!
//! Layout of a data folder (all arrays C-order .npy, numpy-readable):
//! - `m_SSSSSSSS_EEEEEEEE.npy`: parameters of samples S..E, float64, shape (E − S, d_M);
//! - `q_SSSSSSSS_EEEEEEEE.npy`: observables, float64, shape (E − S, d_Q);
//! - `J_SSSSSSSS_EEEEEEEE.npy`: Jacobians, **float32** (bulk data: half the disk, ample for training),
//!   shape (E − S, d_Q, d_M) for `full`, (E − S, d_Q, r) for `projected` (J V_r);
//! - `chunk_SSSSSSSS_EEEEEEEE.json`: the chunk's record (file checksums, failures): its presence
//!   marks the chunk complete;
//! - `manifest.json`: this file, rebuilt from the chunk records after every chunk.
//!
//! A failed sample (with `--allow-failures`) keeps its m; its q and J rows are NaN and it is listed
//! under `failures`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Format tag of this layout.
pub const FORMAT: &str = "dino-dataset-1";

/// Which Jacobian data a folder stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum JacobianKind {
    /// No Jacobians.
    None,
    /// The full d_Q × d_M Jacobian of each sample.
    Full,
    /// J V_r for an input basis V_r (d_Q × r per sample).
    Projected,
}

/// The problem a data set was made for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemRecord {
    pub file: String,
    pub hash: String,
    pub model: String,
    pub mesh: usize,
}

/// The input basis of projected Jacobians.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BasisRecord {
    pub file: String,
    pub checksum: String,
    pub rank: usize,
}

/// The distribution the parameters were drawn from when it is not the prior: a saved Laplace
/// approximation N(m_MAP, Γ_post), tempered (`dino generate --laplace DIR --temper τ`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingRecord {
    pub laplace: String,
    pub checksum: String,
    pub rank: usize,
    /// Noise-variance inflation τ (`--temper`): N(m_MAP, (R + H/τ)⁻¹).
    pub temper: f64,
}

/// Parameters given as rows of a .npy file (`dino generate --parameters`), e.g. the saved states
/// of an MCMC chain: sample i is row i.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParametersRecord {
    pub file: String,
    pub checksum: String,
    pub rows: usize,
}

/// Shape and dtype of one kind of array, per sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArraySpec {
    pub shape: Vec<usize>,
    pub dtype: String,
}

/// A sample whose solve failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub sample: usize,
    pub reason: String,
}

pub use crate::store::FileRecord;

/// One completed chunk: samples `start..end`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkRecord {
    pub start: usize,
    pub end: usize,
    /// "m", "q", "J" → file.
    pub files: BTreeMap<String, FileRecord>,
    pub failures: Vec<Failure>,
    pub wall_s: f64,
}

impl crate::store::ChunkFiles for ChunkRecord {
    fn files(&self) -> &BTreeMap<String, FileRecord> {
        &self.files
    }
}

/// Cost of generating the folder's completed chunks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Wall time of all chunks (across resumed runs).
    pub wall_s: f64,
    /// Forward (state) solves.
    pub forward_solves: usize,
    /// Linear solves for Jacobian data (adjoint or incremental).
    pub jacobian_solves: usize,
    pub samples_per_s: f64,
    pub solves_per_s: f64,
    /// Worker threads of the last run.
    pub threads: usize,
}

/// The manifest of a data folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub problem: ProblemRecord,
    pub seed: u64,
    /// Samples of the whole data set (a shard holds a slice of them).
    pub total_samples: usize,
    /// The slice `start..end` this folder holds.
    pub start: usize,
    pub end: usize,
    pub chunk_size: usize,
    pub jacobian: JacobianKind,
    pub basis: Option<BasisRecord>,
    /// Where m was drawn from when not from the prior.
    #[serde(default)]
    pub sampling: Option<SamplingRecord>,
    /// The file the parameters were read from instead of drawn.
    #[serde(default)]
    pub parameters: Option<ParametersRecord>,
    /// Per-sample arrays: "m", "q" and (with Jacobians) "J".
    pub arrays: BTreeMap<String, ArraySpec>,
    pub chunks: Vec<ChunkRecord>,
    pub failures: Vec<Failure>,
    pub cost: Cost,
}

impl Manifest {
    /// Reads `dir/manifest.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| Error::parse(&path, format!("invalid manifest: {e}")))?;
        if manifest.format != FORMAT {
            return Err(Error::invalid(
                path.display().to_string(),
                "format",
                FORMAT,
                &manifest.format,
            ));
        }
        Ok(manifest)
    }

    /// Writes `dir/manifest.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("manifests serialize");
        crate::io::write_atomic(dir.join("manifest.json"), |w| w.write_all(text.as_bytes()))
    }

    /// The settings that must agree between runs writing into one folder (everything but the chunks and cost).
    pub fn same_job(&self, other: &Manifest) -> Option<&'static str> {
        if self.problem.hash != other.problem.hash {
            Some("problem")
        } else if self.seed != other.seed {
            Some("seed")
        } else if self.total_samples != other.total_samples
            || self.start != other.start
            || self.end != other.end
        {
            Some("samples / shard")
        } else if self.chunk_size != other.chunk_size {
            Some("chunk size")
        } else if self.jacobian != other.jacobian || self.basis != other.basis {
            Some("jacobian / basis")
        } else if self.sampling != other.sampling || self.parameters != other.parameters {
            Some("sampling distribution (--laplace, --temper, --parameters)")
        } else {
            None
        }
    }
}

/// The file stem of samples `start..end`.
pub fn chunk_stem(start: usize, end: usize) -> String {
    format!("{start:08}_{end:08}")
}

/// The name of the record of chunk `start..end`: `chunk_SSSSSSSS_EEEEEEEE.json`.
pub fn chunk_record_name(start: usize, end: usize) -> String {
    format!("chunk_{}.json", chunk_stem(start, end))
}
