//! Dimension-independent MCMC for π(m) ∝ exp(−Φ(m)) N(m̄, C)(m), all well defined on function
//! space. Each kernel proposes reversibly with respect to a Gaussian reference μ_ref and accepts
//! with min(1, exp(η(m) − η(m')) ), η = −log(dπ/dμ_ref), or is an exact Metropolis–Hastings
//! kernel for a coarse posterior whose moves the exact posterior corrects:
//!
//! - [`pcn`]: pCN (μ_ref = prior) and gpCN (μ_ref = the Laplace approximation);
//! - [`mala`]: ∞-MALA, the prior-preconditioned Langevin proposal;
//! - [`manifold`]: subspace mMALA with the map's local Gauss–Newton geometry, and its
//!   surrogate sub-chains;
//! - [`hamiltonian`]: subspace HMC;
//! - [`delayed`]: delayed acceptance, the one combinator that screens a coarse kernel's
//!   proposal (gpCN `da`, mMALA `da-mmala` in [`da_mmala`], sub-chains `da-subchain`, HMC
//!   `da-hmc`) with the surrogate and corrects it with the exact posterior.
//!
//! Every kernel implements `kernel::Kernel` (propose, then accept with the step's uniforms);
//! [`chain`] runs any of them (burn-in, QoI traces, sums, saved states, checkpoints in
//! [`checkpoint`]), and [`factory`] builds the kernel a [`KernelKind`] names. ρ = √(1 − β²)
//! with step β ∈ (0, 1] (equivalently ρ = (4 − h)/(4 + h)). A proposal whose map evaluation
//! fails is rejected and recorded, never fatal. Chain c's step t draws its randomness from the
//! stream (seed, chain, c·2³² + t): chains are reproducible and resume exactly.

pub mod chain;
pub mod checkpoint;
pub mod da_mmala;
pub mod delayed;
pub mod factory;
pub mod hamiltonian;
pub mod kernel;
pub mod mala;
pub mod manifold;
pub mod pcn;
pub mod reference;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use checkpoint::read_saved_samples;

use super::laplace::Laplace;
use super::posterior::Posterior;
use crate::error::{Error, Result};

/// MCMC kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum KernelKind {
    Pcn,
    /// ∞-MALA (pCN-Langevin): prior-preconditioned gradient drift.
    Mala,
    Gpcn,
    /// Delayed acceptance: gpCN screened by the surrogate, corrected by the PDE.
    Da,
    /// Subspace manifold MALA with the map's local Gauss–Newton geometry (DIS-mMALA).
    Mmala,
    /// Delayed acceptance: mMALA on the surrogate's local geometry, corrected by the PDE.
    DaMmala,
    /// Delayed acceptance of whole surrogate mMALA sub-chains (two-level MLDA): one PDE solve
    /// per `--subchain` surrogate steps.
    DaSubchain,
    /// Hamiltonian Monte Carlo in the Laplace subspace with the Gauss–Newton mass matrix at the
    /// MAP, pCN in its complement ([`super::hmc`]).
    Hmc,
    /// Delayed acceptance of surrogate HMC moves: `--subchain` HMC transitions on the corrected
    /// surrogate, then one PDE solve.
    DaHmc,
}

impl KernelKind {
    /// Whether the kernel screens with a surrogate and corrects with the exact map.
    pub fn is_delayed(self) -> bool {
        matches!(
            self,
            KernelKind::Da | KernelKind::DaMmala | KernelKind::DaSubchain | KernelKind::DaHmc
        )
    }

    /// Whether the kernel moves by subspace HMC.
    pub fn is_hmc(self) -> bool {
        matches!(self, KernelKind::Hmc | KernelKind::DaHmc)
    }

    /// Whether the kernel uses the position-dependent mMALA proposal.
    pub fn is_mmala(self) -> bool {
        matches!(
            self,
            KernelKind::Mmala | KernelKind::DaMmala | KernelKind::DaSubchain
        )
    }
}

/// MCMC settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct McmcSettings {
    pub kernel: KernelKind,
    /// β ∈ (0, 1].
    pub step: f64,
    /// Steps per chain after burn-in.
    pub samples: usize,
    pub burn_in: usize,
    pub chains: usize,
    pub seed: u64,
    /// Number of leading Laplace directions whose coefficients are recorded as QoIs.
    pub qoi_directions: usize,
    /// Write a chain checkpoint every this many steps (when an output folder is given).
    pub checkpoint_every: usize,
    /// Surrogate steps per PDE correction of the `da-subchain` kernel, HMC transitions per move
    /// of `hmc` and `da-hmc` (ignored by the others).
    pub subchain: usize,
    /// Leapfrog steps L and step size ε of the HMC kernels.
    #[serde(default = "default_leapfrog_steps")]
    pub leapfrog_steps: usize,
    #[serde(default = "default_leapfrog_size")]
    pub leapfrog_size: f64,
    /// Save every this many post-burn-in states m (0: none) to `chain_C.samples` beside the
    /// checkpoint (only with a checkpoint folder), rows of d_M little-endian f64 (read them with
    /// [`read_saved_samples`]).
    #[serde(default)]
    pub sample_every: usize,
}

fn default_leapfrog_steps() -> usize {
    8
}

fn default_leapfrog_size() -> f64 {
    0.25
}

impl McmcSettings {
    /// Checks the settings (β ∈ (0, 1], at least one chain and sample).
    pub fn validate(&self) -> Result<()> {
        if !(self.step > 0.0 && self.step <= 1.0) {
            return Err(Error::invalid(
                "command line",
                "--step",
                "a step size β in (0, 1] (ρ = √(1 − β²))",
                self.step,
            ));
        }
        if (self.kernel == KernelKind::DaSubchain || self.kernel.is_hmc()) && self.subchain == 0 {
            return Err(Error::invalid(
                "command line",
                "--subchain",
                "at least one surrogate step per PDE correction",
                self.subchain,
            ));
        }
        if self.chains == 0 || self.samples == 0 {
            return Err(Error::invalid(
                "command line",
                "--chains / --samples",
                "at least one chain and one sample",
                format!("{} / {}", self.chains, self.samples),
            ));
        }
        Ok(())
    }
}

/// What a chain runs on.
pub struct Target<'a> {
    /// The exact posterior of the chain (PDE, or the surrogate for a surrogate-only chain).
    pub exact: &'a Posterior<'a>,
    /// The surrogate posterior of stage 1 (delayed acceptance only).
    pub screen: Option<&'a Posterior<'a>>,
    /// Reference Gaussian of gpCN / DA, and the QoI directions.
    pub laplace: &'a Laplace,
    /// The R-orthonormal subspace of the mMALA kernels (default: the Laplace eigenvectors).
    pub subspace: Option<&'a ndarray::Array2<f64>>,
}

/// A proposal that could not be evaluated.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProposalFailure {
    pub chain: usize,
    pub step: usize,
    pub reason: String,
}

/// The state of one chain (also its checkpoint).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChainState {
    pub chain: usize,
    /// Steps done (burn-in included).
    pub steps: usize,
    pub m: Vec<f64>,
    /// Φ of the exact posterior at m.
    pub phi: f64,
    /// q(m) of the exact map and q_s(m) of the screening surrogate (DA).
    pub q: Vec<f64>,
    pub q_screen: Vec<f64>,
    /// ∇Φ(m) (∞-MALA).
    pub gradient: Vec<f64>,
    pub proposals: usize,
    pub stage1_accepted: usize,
    pub accepted: usize,
    pub exact_evaluations: usize,
    pub screen_evaluations: usize,
    pub failures: Vec<ProposalFailure>,
    /// Surrogate sub-chain steps and accepted sub-chain steps (`da-subchain`).
    #[serde(default)]
    pub subchain_steps: usize,
    #[serde(default)]
    pub subchain_accepted: usize,
    /// QoI trace after burn-in: [Φ, c_1, …, c_k] per step. Checkpoints keep it out of the
    /// state file, in an append-only `chain_C.qoi` beside it (little-endian f64 rows), so a
    /// checkpoint costs O(new steps), not O(all steps).
    #[serde(skip)]
    pub qoi: Vec<Vec<f64>>,
    /// Σ m and Σ m² after burn-in.
    pub sum: Vec<f64>,
    pub sum_sq: Vec<f64>,
    pub wall_s: f64,
    /// Fingerprint of the settings the chain was started with (resume check).
    pub fingerprint: String,
    /// The `sample_every` the chain saves states with (a resumed chain must keep it).
    #[serde(default)]
    pub sample_every: usize,
}

/// Runs (or resumes from `checkpoint_dir`) the chains in parallel.
pub fn run_chains(
    target: &Target<'_>,
    start: &[f64],
    settings: &McmcSettings,
    checkpoint_dir: Option<PathBuf>,
    fingerprint: &str,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<ChainState>> {
    settings.validate()?;
    if settings.kernel.is_delayed() && target.screen.is_none() {
        return Err(Error::invalid(
            "command line",
            "--kernel",
            "a surrogate for delayed acceptance (--surrogate S)",
            "delayed acceptance without a surrogate",
        ));
    }
    factory::with_kernel(target, settings, |target, kernel| {
        let driver = chain::Driver {
            target,
            settings,
            progress,
        };
        use rayon::prelude::*;
        (0..settings.chains)
            .into_par_iter()
            .map(|c| {
                let path = checkpoint_dir
                    .as_ref()
                    .map(|d| checkpoint::state_path(d, c));
                let state = start_chain(target, c, start, settings, fingerprint, path.as_deref())?;
                kernel.run(&driver, state, path.as_deref())
            })
            .collect()
    })
}

/// Chain c resumed from its checkpoint at `path`, or a new one.
fn start_chain(
    target: &Target<'_>,
    c: usize,
    start: &[f64],
    settings: &McmcSettings,
    fingerprint: &str,
    path: Option<&std::path::Path>,
) -> Result<ChainState> {
    let width = 1 + settings.qoi_directions.min(target.laplace.vectors.ncols());
    let resumed = path.and_then(|p| checkpoint::resume(p, fingerprint, settings, width));
    match resumed {
        // a longer run continues a shorter one; a shorter one would discard steps
        Some(s) if s.steps > settings.burn_in + settings.samples => Err(Error::invalid(
            path.map_or_else(String::new, |p| p.display().to_string()),
            "--samples",
            format!(
                "at least the {} samples this chain already holds (or another --out)",
                s.steps - settings.burn_in
            ),
            settings.samples,
        )),
        Some(s) => Ok(s),
        None => factory::new_chain(target, c, start, settings, fingerprint),
    }
}

/// Posterior mean and pointwise variance over all chains' post-burn-in samples.
pub fn moments(chains: &[ChainState]) -> (Vec<f64>, Vec<f64>) {
    let n: usize = chains.iter().map(|c| c.qoi.len()).sum();
    let d = chains[0].sum.len();
    let mut mean = vec![0.0; d];
    let mut sq = vec![0.0; d];
    for c in chains {
        for k in 0..d {
            mean[k] += c.sum[k];
            sq[k] += c.sum_sq[k];
        }
    }
    let nf = n.max(1) as f64;
    let var = (0..d)
        .map(|k| (sq[k] / nf - (mean[k] / nf).powi(2)).max(0.0) * nf / (nf - 1.0).max(1.0))
        .collect();
    (mean.iter().map(|v| v / nf).collect(), var)
}
