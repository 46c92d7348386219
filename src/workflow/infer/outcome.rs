//! The typed outcome of one inversion: every number `report.json` holds, as structs, and the
//! fields (MAP, Laplace variance, posterior moments) the writers turn into plots and `.vtu`.

use ndarray::Array2;
use serde::Serialize;

use crate::inference::mcmc::{KernelKind, ProposalFailure};
use crate::inference::newton_cg::NewtonRecord;
use crate::inference::posterior::Cost;
use crate::inference::Laplace;

use super::{DataFit, DataSource};

/// What one inference run produced: `report` is `report.json`; the rest are the fields behind
/// the plots, the `.vtu` and what `compare` composes.
#[derive(Debug, Clone, Serialize)]
pub struct InferOutcome {
    pub report: InferReport,
    /// The true parameter the synthetic data were generated from (`None` for observed data).
    pub m_true: Option<Vec<f64>>,
    pub m_map: Vec<f64>,
    /// Pointwise variance of the Laplace approximation (empty for `Method::Map`).
    pub laplace_variance: Vec<f64>,
    /// The Laplace approximation (`None` for `Method::Map`); written to `OUT/laplace/`.
    #[serde(skip)]
    pub laplace: Option<Laplace>,
    /// Pooled MCMC posterior mean and pointwise variance.
    pub mean: Option<Vec<f64>>,
    pub variance: Option<Vec<f64>>,
    /// The chains' traces of the leading Laplace coefficient (Φ where there is none), one per
    /// chain (empty without MCMC).
    pub traces: Vec<Vec<f64>>,
    /// Every `save_samples`-th post-burn-in state (rows: chain 0's, then chain 1's, …).
    #[serde(skip)]
    pub posterior_samples: Option<Array2<f64>>,
    /// This run's elapsed time (a resumed chain's earlier steps not included).
    pub wall_s: f64,
    /// What the run's results cost in all, resumed steps included.
    pub cost: RunCost,
    /// The smallest ESS over the QoIs (`None` without MCMC or where it is not finite).
    pub ess_min: Option<f64>,
    /// The largest relative differences (mean, pointwise variance) between two chains of the
    /// MCMC run: the Monte-Carlo scale of any comparison of its moments.
    pub chain_spread: Option<(f64, f64)>,
    /// Per-vertex Monte-Carlo standard errors of the pooled posterior mean and pointwise variance,
    /// from the spread between the chains (`between_chain_standard_error`); `None` for one chain.
    pub moment_errors: Option<(Vec<f64>, Vec<f64>)>,
}

impl InferOutcome {
    /// The MCMC diagnostics, where the run sampled.
    pub fn diagnostics(&self) -> Option<&Diagnostics> {
        self.report.mcmc.as_ref().map(|m| &m.diagnostics)
    }
}

/// The cost of an inference result: the set-up (MAP, its PDE refinement, the Laplace
/// approximation) as this run measured it, and the MCMC over the chains' whole length, as the
/// chains recorded it (steps run by earlier, resumed runs included).
#[derive(Debug, Clone, Copy, Default, Serialize)]
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

/// `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct InferReport {
    pub problem: String,
    pub problem_hash: String,
    /// "PDE", "surrogate DIR" or the label a caller chose.
    pub forward_map: String,
    /// σ where the noise is isotropic (Γ_noise = σ² I); absent for per-datum σ or a full Γ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise_std: Option<f64>,
    /// Synthetic data, or the file of the observed data and its checksum.
    pub data_source: DataSource,
    pub data: Vec<f64>,
    /// The fit of q(m_MAP) to the data (residuals whitened by Γ^{-1/2}).
    pub map_fit: DataFit,
    pub map: MapReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub map_pde_refined: Option<RefinedMapReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub laplace: Option<LaplaceReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcmc: Option<McmcReport>,
    pub cost: CostReport,
}

/// The MAP point's optimization.
#[derive(Debug, Clone, Serialize)]
pub struct MapReport {
    pub converged: bool,
    pub iterations: usize,
    pub cost: Cost,
    pub evaluations: usize,
    pub incremental_solves: usize,
    pub wall_s: f64,
    /// ‖m_MAP − m_true‖ / ‖m_true‖ (synthetic data only).
    pub relative_error_to_truth: Option<f64>,
    pub history: Vec<NewtonRecord>,
}

/// The PDE Newton steps warm-started at the surrogate MAP (delayed acceptance).
#[derive(Debug, Clone, Serialize)]
pub struct RefinedMapReport {
    pub iterations: usize,
    pub cost: Cost,
    pub evaluations: usize,
    pub incremental_solves: usize,
    pub wall_s: f64,
    /// ‖m_MAP,surrogate − m_MAP,PDE‖ / ‖m_MAP,PDE‖.
    pub relative_difference_to_surrogate_map: f64,
}

/// The low-rank Laplace approximation's spectrum.
#[derive(Debug, Clone, Serialize)]
pub struct LaplaceReport {
    pub rank: usize,
    /// Eigenvalues of the prior-preconditioned Gauss–Newton Hessian, decreasing.
    pub eigenvalues: Vec<f64>,
    pub wall_s: f64,
}

/// The MCMC run.
#[derive(Debug, Clone, Serialize)]
pub struct McmcReport {
    pub kernel: KernelKind,
    pub step: f64,
    /// ρ = √(1 − β²).
    pub rho: f64,
    pub chains: usize,
    pub samples_per_chain: usize,
    pub burn_in: usize,
    pub wall_s: f64,
    pub diagnostics: Diagnostics,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relative_error_of_mean_to_truth: Option<f64>,
    pub failed_proposals: Vec<ProposalFailure>,
    pub saved_samples: Option<SavedSamples>,
}

/// Where the saved chain states went.
#[derive(Debug, Clone, Serialize)]
pub struct SavedSamples {
    pub file: String,
    pub every: usize,
    pub rows: usize,
}

/// Acceptance rates, ESS / IACT per QoI, R̂, ESS per second and per PDE solve.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostics {
    pub subchain_acceptance_rate: Option<f64>,
    pub proposals: usize,
    pub acceptance_rate: f64,
    pub stage1_acceptance_rate: f64,
    pub stage2_acceptance_rate: f64,
    pub qoi: Vec<QoiDiagnostics>,
    /// max R̂ over the QoIs (Gelman–Rubin; `None` for one chain).
    pub r_hat_max: Option<f64>,
    /// R̂ < 1.1 on every QoI; ESS estimates of chains that have not mixed (e.g. pCN stuck near
    /// different starting points) are not meaningful.
    pub converged: Option<bool>,
    pub ess_min: f64,
    pub ess_per_second: f64,
    pub pde_solves: usize,
    pub ess_per_pde_solve: Option<f64>,
}

/// ESS, integrated autocorrelation time and R̂ of one QoI trace.
#[derive(Debug, Clone, Serialize)]
pub struct QoiDiagnostics {
    pub qoi: String,
    pub ess: f64,
    pub iact: f64,
    pub r_hat: Option<f64>,
}

/// `report.json`'s cost: this run's wall time and PDE solves, the set-up's, the surrogate calls.
#[derive(Debug, Clone, Serialize)]
pub struct CostReport {
    pub wall_s: f64,
    pub pde_solves: usize,
    pub setup_wall_s: f64,
    pub setup_pde_solves: usize,
    pub surrogate_calls: usize,
}
