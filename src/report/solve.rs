//! What `dino solve` prints or writes: q(m), J v, the files written and the timings.

use std::path::PathBuf;

use serde::Serialize;

/// Where the parameter came from.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Parameter {
    File { file: PathBuf },
    PriorSample { prior_sample_seed: u64 },
}

/// What `dino solve` prints (or writes to `--out`): q(m), J v, files written, timings.
#[derive(Debug, Serialize)]
pub struct SolveReport {
    pub problem: PathBuf,
    pub model: String,
    pub mesh: usize,
    pub input_dim: usize,
    pub output_dim: usize,
    pub parameter: Parameter,
    pub q: Vec<f64>,
    /// Newton iterations and residual norms of a nonlinear PDE.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newton_iterations: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub residual_norms: Option<Vec<f64>>,
    /// J v for `--direction v`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jv: Option<Vec<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jacobian_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vtk_file: Option<PathBuf>,
    pub timings_s: Timings,
}

/// Seconds per stage.
#[derive(Debug, Serialize)]
pub struct Timings {
    pub assembly: f64,
    pub factorization: f64,
    pub solve: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jvp: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jacobian: Option<f64>,
    pub total: f64,
}
