//! Dimension-independent MCMC for π(m) ∝ exp(−Φ(m)) N(m̄, C)(m), all well defined on function
//! space. Each kernel proposes reversibly with respect to a Gaussian reference μ_ref and accepts
//! with min(1, exp(η(m) − η(m'))), η = −log(dπ/dμ_ref):
//!
//! - **pCN**: μ_ref = prior, m' = m̄ + ρ (m − m̄) + β s, s ~ N(0, C); η = Φ.
//! - **∞-MALA** (pCN-Langevin, Cotter–Roberts–Stuart–White 2013): with u = m − m̄,
//!   v = [(2 − δ) u − 2δ C∇Φ(m) + √(8δ) w]/(2 + δ), w ~ N(0, C), accepted with
//!   min(1, exp(r(u, v) − r(v, u))), r(u, v) = Φ(u) + ½⟨v − u, ∇Φ(u)⟩ + (δ/4)⟨u + v, ∇Φ(u)⟩
//!   + (δ/4)⟨∇Φ(u), C∇Φ(u)⟩; ρ = (2 − δ)/(2 + δ) (= (4 − h)/(4 + h) with h = 2δ).
//! - **gpCN** (geometric, Laplace-preconditioned): μ_ref = N(m_MAP, Γ_post) from the Laplace
//!   approximation (the GN Hessian of whichever map built it, e.g. the surrogate's, in its
//!   reduced basis), m' = m_MAP + ρ (m − m_MAP) + β ξ, ξ ~ N(0, Γ_post);
//!   η = Φ + ½‖m − m̄‖²_R − ½‖m − m_MAP‖²_R − ½ Σ λ_i (v_iᵀ R (m − m_MAP))².
//! - **Delayed acceptance** (gpCN proposals; Christen & Fox 2005 with a state-dependent
//!   approximation): at the current state x the surrogate is corrected by its known error,
//!   q*_x(z) = q_s(z) + q(x) − q_s(x), so what stage 1 sees is the surrogate's error *difference*
//!   between x and the proposal, ≈ (∇q_s − ∇q)(y − x) — small exactly when the surrogate's
//!   Jacobian is accurate (the point of derivative-informed training). Stage 1 accepts y with
//!   α₁(x, y) = min(1, exp(η*_x(x) − η*_x(y))); stage 2 with
//!   α₂ = min(1, exp(η(x) − η(y)) α₁(y, x) / α₁(x, y)), where α₁(y, x) uses q*_y and needs only
//!   q(y), which stage 2 has just computed. The chain targets the exact (PDE) posterior while
//!   most rejections cost only a surrogate call.
//!
//! - **mMALA** (subspace manifold MALA, [`super::mmala`]): a Langevin proposal with the map's
//!   local Gauss–Newton Hessian and gradient in the Laplace subspace, pCN in its complement;
//!   position-dependent, so every proposal needs the map's Jacobian on the subspace.
//! - **Delayed acceptance with mMALA** (DA-DINO-mMALA of Cao et al. 2024): the mMALA proposal
//!   built from the *surrogate's* local geometry, stage 1 on the corrected surrogate as above,
//!   stage 2 with the PDE (a forward solve only, no PDE derivatives). The Laplace terms of η are
//!   replaced by the mMALA log-ratio G(x, y) of [`super::mmala`].
//!
//! - **Delayed acceptance with surrogate sub-chains** (`da-subchain`; the two-level form of
//!   multilevel delayed acceptance, Lykkegaard, Dodwell, Fox, Mingas & Scheichl 2023, or Liu's
//!   surrogate transition method): the proposal is the end point y of `subchain` steps of
//!   mMALA on the *coarse* posterior π_C ∝ exp(−Φ_C) × prior, Φ_C(m) = ½‖q_C(m) − d‖²_{Γ⁻¹},
//!   q_C = q_s + e₀ + ΔJ (m − m₀) the surrogate corrected to match the PDE's value and Jacobian
//!   at the chain's centre m₀ (the PDE MAP; [`super::mmala::AffineCorrection`]), a fixed
//!   correction so that π_C does not depend on the state. A π_C-reversible kernel K gives a
//!   π_C-reversible Kⁿ, so the Metropolis–Hastings ratio of the move for the PDE
//!   posterior π is π(y) π_C(x) / (π(x) π_C(y)):
//!   log α = [Φ(x) − Φ_C(x)] − [Φ(y) − Φ_C(y)], one PDE forward solve per sub-chain (none when
//!   the sub-chain did not move). The PDE is consulted once every n surrogate steps, so long
//!   moves cost what a single DA step costs.
//!
//! ρ = √(1 − β²) with step β ∈ (0, 1] (equivalently ρ = (4 − h)/(4 + h)). A proposal whose map
//! evaluation fails is rejected and recorded, never fatal. Chain c's step t draws its randomness
//! from the stream (seed, chain, c·2³² + t): chains are reproducible and resume exactly.

use std::path::PathBuf;
use std::time::Instant;

use ndarray::Array1;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::hmc::{HmcSettings, SubspaceHmc};
use super::laplace::Laplace;
use super::mmala::{log_reference_ratio, AffineCorrection, BasisJacobian, LocalGeometry, Subspace};
use super::posterior::Posterior;
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::misfit::GaussianMisfit;
use crate::rng::{stream, Purpose};

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
    // A surrogate that carries an affine part (an anchored DIPNet, q_s = a + A m + g(m)): the
    // two-level kernels' affine correction towards the PDE absorbs that part, so their coarse
    // model q_C is built from g alone; it is the same q_C, and g keeps its reduced fast paths.
    let network_screen = match (settings.kernel, target.screen) {
        (KernelKind::DaSubchain | KernelKind::DaHmc, Some(s)) => s
            .map
            .affine_free_part()
            .map(|g| Posterior::new(g, s.prior, s.misfit.clone()))
            .transpose()?,
        _ => None,
    };
    // The same for a surrogate-only `hmc` chain on such a surrogate: HMC runs on g plus the
    // affine part as a fixed correction (the same map), so g's fast path applies.
    let own_network = match (settings.kernel, target.screen) {
        (KernelKind::Hmc, None) => {
            let exact = target.exact;
            exact
                .map
                .affine_free_part()
                .map(|g| Posterior::new(g, exact.prior, exact.misfit.clone()))
                .transpose()?
        }
        _ => None,
    };
    let target = &Target {
        exact: target.exact,
        screen: network_screen.as_ref().or(target.screen),
        laplace: target.laplace,
        subspace: target.subspace,
    };
    let subspace = Subspace::new(
        target.exact.prior,
        target.subspace.unwrap_or(&target.laplace.vectors).clone(),
    );
    // the coarse model of the two-level kernels: the surrogate corrected at the Laplace mean;
    // for `hmc` on an anchored surrogate, its affine part (exact: the difference is affine)
    let correction = match (settings.kernel, target.screen, &own_network) {
        (KernelKind::DaSubchain | KernelKind::DaHmc, Some(s), _) => Some(AffineCorrection::at(
            target.exact,
            s,
            &subspace,
            &target.laplace.mean,
        )?),
        (KernelKind::Hmc, None, Some(g)) => Some(AffineCorrection::at(
            target.exact,
            g,
            &subspace,
            &target.laplace.mean,
        )?),
        _ => None,
    };
    let jacobians = match settings.kernel.is_mmala() {
        false => None,
        true => {
            let screen = match target.screen {
                Some(s) => {
                    let jac = BasisJacobian::new(s, &subspace);
                    Some(match &correction {
                        Some(k) => jac.with_correction(k.clone()),
                        None => jac,
                    })
                }
                None => None,
            };
            Some((BasisJacobian::new(target.exact, &subspace), screen))
        }
    };
    let hmc = match settings.kernel.is_hmc() {
        false => None,
        true => {
            // HMC runs on the corrected surrogate (da-hmc) or on the chain's own map (hmc),
            // split into network and affine part where it has one
            let (post, jac) = match (target.screen.or(own_network.as_ref()), &correction) {
                (Some(s), Some(k)) => (
                    s,
                    BasisJacobian::new(s, &subspace).with_correction(k.clone()),
                ),
                _ => (target.exact, BasisJacobian::new(target.exact, &subspace)),
            };
            let centre = &target.laplace.mean;
            let c = subspace.coordinates(target.exact.prior, centre);
            let metric = LocalGeometry::at(post, &jac, &subspace, centre, c)?;
            let hmc_settings = HmcSettings {
                leapfrog_steps: settings.leapfrog_steps,
                leapfrog_size: settings.leapfrog_size,
                transitions: settings.subchain,
            };
            Some(SubspaceHmc::new(
                post,
                &subspace,
                correction.as_ref(),
                metric.hessian_eigen(),
                hmc_settings,
            )?)
        }
    };
    let mmala = jacobians.as_ref().map(|(exact, screen)| MmalaParts {
        subspace: &subspace,
        exact,
        screen: screen.as_ref().filter(|_| settings.kernel.is_delayed()),
        subchain: settings.kernel == KernelKind::DaSubchain,
    });
    use rayon::prelude::*;
    (0..settings.chains)
        .into_par_iter()
        .map(|c| {
            let path = checkpoint_dir
                .as_ref()
                .map(|d| d.join(format!("chain_{c}.json")));
            let width = 1 + settings.qoi_directions.min(target.laplace.vectors.ncols());
            let resumed = path
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .and_then(|t| serde_json::from_str::<ChainState>(&t).ok())
                .filter(|s| s.fingerprint == fingerprint && s.sample_every == settings.sample_every)
                .and_then(|mut s| {
                    let state = path.as_ref()?;
                    let rows = s.steps.saturating_sub(settings.burn_in);
                    s.qoi = read_qoi_trace(&qoi_trace_path(state), rows, width)?;
                    if settings.sample_every > 0 {
                        let saved = saved_sample_rows(s.steps, settings);
                        cut_rows(&samples_path(state), saved, s.m.len())?;
                    }
                    Some(s)
                });
            let state = match resumed {
                // a longer run continues a shorter one; a shorter one would discard steps
                Some(s) if s.steps > settings.burn_in + settings.samples => {
                    return Err(Error::invalid(
                        path.as_ref()
                            .map_or_else(String::new, |p| p.display().to_string()),
                        "--samples",
                        format!(
                            "at least the {} samples this chain already holds (or another --out)",
                            s.steps - settings.burn_in
                        ),
                        settings.samples,
                    ));
                }
                Some(s) => s,
                None => new_chain(target, c, start, settings, fingerprint)?,
            };
            run_chain(
                target,
                mmala.as_ref(),
                hmc.as_ref(),
                state,
                settings,
                path.as_deref(),
                progress,
            )
        })
        .collect()
}

fn new_chain(
    target: &Target<'_>,
    c: usize,
    start: &[f64],
    settings: &McmcSettings,
    fingerprint: &str,
) -> Result<ChainState> {
    // chains start from independent draws of the Laplace approximation (pCN: of the prior)
    let mut rng = stream(
        settings.seed,
        Purpose::Chain,
        (c as u64) << 32 | 0xffff_ffff,
    );
    let prior = target.exact.prior;
    let m = match settings.kernel {
        KernelKind::Pcn | KernelKind::Mala => prior.sample(&mut rng),
        _ => {
            let d = target.laplace.sample_deviation(prior, &mut rng);
            start.iter().zip(&d).map(|(a, b)| a + b).collect()
        }
    };
    let (q, phi, gradient) = if settings.kernel == KernelKind::Mala {
        target.exact.misfit_with_gradient(&m)?
    } else {
        let q = target.exact.observe(&m)?;
        let phi = target.exact.misfit.cost(&q);
        (q, phi, Vec::new())
    };
    let q_screen = match target.screen {
        Some(s) => s.observe(&m)?,
        None => Vec::new(),
    };
    let n = m.len();
    Ok(ChainState {
        chain: c,
        steps: 0,
        m,
        phi,
        q,
        q_screen,
        gradient,
        proposals: 0,
        stage1_accepted: 0,
        accepted: 0,
        exact_evaluations: 1,
        screen_evaluations: usize::from(target.screen.is_some()),
        failures: Vec::new(),
        subchain_steps: 0,
        subchain_accepted: 0,
        qoi: Vec::new(),
        sum: vec![0.0; n],
        sum_sq: vec![0.0; n],
        wall_s: 0.0,
        fingerprint: fingerprint.to_string(),
        sample_every: settings.sample_every,
    })
}

/// What every step needs from the Laplace geometry, with one R application per state:
/// with d = m − m_MAP, δ = m_MAP − m̄ and c = Vᵀ R d,
///   η's reference part = ½‖m − m̄‖²_R − ½‖m − m_MAP‖²_R − ½ Σ λ_i c_i²
///                      = dᵀ R δ + ½ δᵀ R δ − ½ Σ λ_i c_i²   (0 for pCN and ∞-MALA),
/// and the QoI coefficients c_1..c_k.
struct Geometry {
    r_delta: Vec<f64>,
    delta_r_delta: f64,
}

impl Geometry {
    fn new(target: &Target<'_>) -> Self {
        let prior = target.exact.prior;
        let delta: Vec<f64> = target
            .laplace
            .mean
            .iter()
            .zip(prior.mean())
            .map(|(a, b)| a - b)
            .collect();
        let r_delta = prior.precision_mul(&delta);
        let delta_r_delta = delta.iter().zip(&r_delta).map(|(a, b)| a * b).sum();
        Geometry {
            r_delta,
            delta_r_delta,
        }
    }

    /// (reference term, the first `k` coefficients c_i) at m.
    fn at(&self, target: &Target<'_>, kernel: KernelKind, m: &[f64], k: usize) -> (f64, Vec<f64>) {
        let lap = target.laplace;
        let d: Vec<f64> = m.iter().zip(&lap.mean).map(|(a, b)| a - b).collect();
        let c = crate::linalg::transpose_mul(
            &lap.vectors,
            ndarray::Array1::from(target.exact.prior.precision_mul(&d)).view(),
        );
        let reference = if matches!(
            kernel,
            KernelKind::Pcn
                | KernelKind::Mala
                | KernelKind::Mmala
                | KernelKind::DaMmala
                | KernelKind::DaSubchain
        ) {
            0.0
        } else {
            let low_rank: f64 = c
                .iter()
                .zip(lap.eigenvalues.iter())
                .map(|(c, l)| l * c * c)
                .sum();
            d.iter().zip(&self.r_delta).map(|(a, b)| a * b).sum::<f64>() + 0.5 * self.delta_r_delta
                - 0.5 * low_rank
        };
        (reference, c.iter().take(k).copied().collect())
    }
}

/// What the mMALA kernels need besides the target: the subspace and J V of each map.
struct MmalaParts<'a> {
    subspace: &'a Subspace,
    exact: &'a BasisJacobian,
    screen: Option<&'a BasisJacobian>,
    /// Whether the screen's geometry is the corrected coarse map of `da-subchain`.
    subchain: bool,
}

impl MmalaParts<'_> {
    /// The geometry that drives the proposal at m: the screening surrogate's for delayed
    /// acceptance (`screen` is set only then), else the exact map's.
    fn geometry(&self, target: &Target<'_>, m: &[f64], c: Array1<f64>) -> Result<LocalGeometry> {
        match (target.screen, self.screen) {
            (Some(post), Some(jac)) => LocalGeometry::at(post, jac, self.subspace, m, c),
            _ => LocalGeometry::at(target.exact, self.exact, self.subspace, m, c),
        }
    }

    /// Counts one [`Self::geometry`] evaluation against the map that made it.
    fn count_geometry(&self, s: &mut ChainState) {
        if self.screen.is_some() {
            s.screen_evaluations += 1;
        } else {
            s.exact_evaluations += 1;
        }
    }
}

/// A state of an mMALA sub-chain: the point, the local geometry there and the misfit of the
/// sub-chain's target at it.
struct SubchainPoint {
    m: Vec<f64>,
    local: LocalGeometry,
    phi: f64,
}

/// What [`mmala_subchain`] did.
struct SubchainOutcome {
    end: SubchainPoint,
    steps: usize,
    accepted: usize,
    failures: Vec<Error>,
}

/// `steps` mMALA steps reversible with respect to exp(−Φ) × prior, Φ = ½‖q − d‖²_{Γ⁻¹} with
/// q the output of the map of [`MmalaParts::geometry`] (the exact map, or the corrected coarse
/// map of `da-subchain`), which also gives the local geometry and the drift, with the
/// randomness of `rng`. One step is the plain mMALA kernel; n steps are the proposal of
/// `da-subchain`.
fn mmala_subchain(
    parts: &MmalaParts<'_>,
    target: &Target<'_>,
    rho: f64,
    start: SubchainPoint,
    steps: usize,
    rng: &mut impl Rng,
) -> SubchainOutcome {
    let prior = target.exact.prior;
    let misfit = &target.exact.misfit;
    let data = misfit.data();
    let mut x = start;
    let (mut accepted, mut failures) = (0, Vec::new());
    for _ in 0..steps {
        let draw = prior.draw(rng);
        let g_x = x.local.gradient(&x.local.q, data);
        let (y, c_y) = parts
            .subspace
            .propose(prior, &x.m, &x.local, &g_x, rho, &draw);
        let u: f64 = rng.random();
        match parts.geometry(target, &y, c_y) {
            Err(e) => failures.push(e),
            Ok(local_y) => {
                let phi_y = misfit.cost(&local_y.q);
                let g_y = local_y.gradient(&local_y.q, data);
                let g = log_reference_ratio(&x.local, &g_x, &local_y, &g_y, rho);
                if u.ln() < x.phi - phi_y + g {
                    accepted += 1;
                    x = SubchainPoint {
                        m: y,
                        local: local_y,
                        phi: phi_y,
                    };
                }
            }
        }
    }
    SubchainOutcome {
        end: x,
        steps,
        accepted,
        failures,
    }
}

/// q*_c(z) = q_s(z) + q(c) − q_s(c): the surrogate output at z corrected by its known error at
/// a centre c.
fn corrected(qs: &[f64], q_c: &[f64], qs_c: &[f64]) -> Vec<f64> {
    qs.iter()
        .zip(q_c)
        .zip(qs_c)
        .map(|((a, b), c)| a + b - c)
        .collect()
}

/// One end of a delayed-acceptance mMALA move: the surrogate's local geometry there (with its
/// output q_s) and the exact output q. The kernel's drift at a state uses the exact residual
/// q − d with the surrogate's J V, so that K(x, ·) is known once q(x) is.
struct DaEnd<'a> {
    local: &'a LocalGeometry,
    q: &'a [f64],
}

/// Stage-1 exponent log α₁(x, y) before clipping: the mMALA ratio of the surrogate corrected by
/// its error at x, q*_x = q_s + q(x) − q_s(x), in the target and in the reverse drift at y
/// (where q(y) is not yet known):
///   Φ(x) − Φ(q*_x(y)) + G(x, y; g_x, g*_x(y)).
fn da_mmala_stage1(
    misfit: &GaussianMisfit,
    rho: f64,
    x: &DaEnd<'_>,
    local_y: &LocalGeometry,
) -> f64 {
    let data = misfit.data();
    let g_x = x.local.gradient(x.q, data);
    let q_star_y = corrected(&local_y.q, x.q, &x.local.q);
    let g_star_y = local_y.gradient(&q_star_y, data);
    misfit.cost(x.q) - misfit.cost(&q_star_y)
        + log_reference_ratio(x.local, &g_x, local_y, &g_star_y, rho)
}

/// Stage-2 exponent log α₂(x, y) = Φ(x) − Φ(y) + G(x, y; g_x, g_y) + min(0, log α₁(y, x))
/// − min(0, log α₁(x, y)): Metropolis–Hastings for the effective proposal α₁ K, exact for the
/// PDE posterior (Christen & Fox 2005).
fn da_mmala_stage2(
    misfit: &GaussianMisfit,
    rho: f64,
    x: &DaEnd<'_>,
    y: &DaEnd<'_>,
    a1: f64,
) -> f64 {
    let data = misfit.data();
    let (g_x, g_y) = (x.local.gradient(x.q, data), y.local.gradient(y.q, data));
    let full = log_reference_ratio(x.local, &g_x, y.local, &g_y, rho);
    let a1_rev = da_mmala_stage1(misfit, rho, y, x.local);
    misfit.cost(x.q) - misfit.cost(y.q) + full + a1_rev.min(0.0) - a1.min(0.0)
}

fn run_chain(
    target: &Target<'_>,
    mmala: Option<&MmalaParts<'_>>,
    hmc: Option<&SubspaceHmc<'_>>,
    mut s: ChainState,
    settings: &McmcSettings,
    checkpoint: Option<&std::path::Path>,
    progress: &indicatif::ProgressBar,
) -> Result<ChainState> {
    let started = Instant::now();
    let wall_before = s.wall_s;
    let total = settings.burn_in + settings.samples;
    // QoI rows already in the trace file (a new chain starts an empty one)
    let mut rows_written = s.qoi.len();
    if let (Some(path), 0) = (checkpoint, rows_written) {
        let trace = qoi_trace_path(path);
        if let Some(dir) = trace.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        std::fs::File::create(&trace).map_err(|e| Error::io(&trace, e))?;
        if settings.sample_every > 0 {
            let samples = samples_path(path);
            std::fs::File::create(&samples).map_err(|e| Error::io(&samples, e))?;
        }
    }
    // saved states not yet on disk (flat rows of d_M)
    let mut pending_samples: Vec<f64> = Vec::new();
    let prior = target.exact.prior;
    let lap = target.laplace;
    let rho = (1.0 - settings.step * settings.step).sqrt();
    let beta = settings.step;
    let geometry = Geometry::new(target);
    let data = target.exact.misfit.data();
    let k = settings.qoi_directions.min(lap.vectors.ncols());
    let (mut ref_m, mut coef_m) = geometry.at(target, settings.kernel, &s.m, k);
    let c_map = ((mmala.is_some() || hmc.is_some()) && target.subspace.is_none()).then(|| {
        crate::linalg::transpose_mul(&lap.vectors, Array1::from(geometry.r_delta.clone()).view())
    });
    // the mMALA proposal's local geometry at the current state (recomputed on resume)
    let mut local = match mmala {
        Some(parts) => {
            let c = parts.subspace.coordinates(prior, &s.m);
            parts.count_geometry(&mut s);
            Some(parts.geometry(target, &s.m, c)?)
        }
        None => None,
    };
    // the HMC state (c, m⊥) at the current state, on the map HMC runs on
    let mut hmc_point = match hmc {
        Some(h) => {
            s.screen_evaluations += usize::from(settings.kernel.is_delayed());
            Some(h.start(&s.m)?)
        }
        None => None,
    };
    while s.steps < total {
        let t = s.steps;
        let mut rng = stream(
            settings.seed,
            Purpose::Chain,
            (s.chain as u64) << 32 | t as u64,
        );
        let delta = 2.0 * (1.0 - rho) / (1.0 + rho);
        let mut c_grad = Vec::new();
        let mut c_proposal = None;
        let fail = |s: &mut ChainState, e: Error| {
            if s.failures.len() < 100 {
                s.failures.push(ProposalFailure {
                    chain: s.chain,
                    step: t,
                    reason: e.to_string(),
                });
            }
        };
        let mut subchain = None;
        let mut hmc_move = None;
        let proposal: Vec<f64> = match settings.kernel {
            KernelKind::Hmc | KernelKind::DaHmc => {
                let h = hmc.expect("hmc parts");
                let x = hmc_point.clone().expect("set with the hmc parts");
                let mut run = h.sweep(x, rho, &mut rng);
                for e in std::mem::take(&mut run.failures) {
                    fail(&mut s, e);
                }
                match settings.kernel {
                    KernelKind::DaHmc => s.screen_evaluations += run.evaluations,
                    _ => s.exact_evaluations += run.evaluations,
                }
                s.subchain_steps += run.transitions;
                s.subchain_accepted += run.accepted;
                c_proposal = Some(run.end.c.clone());
                let y = run.end.parameter(h.subspace(), prior.mean());
                hmc_move = Some(run);
                y
            }
            KernelKind::Mmala | KernelKind::DaSubchain => {
                let (parts, local) = (mmala.expect("mmala parts"), local.as_ref().expect("set"));
                // plain mMALA is a sub-chain of one step on the exact posterior
                let steps = if parts.subchain { settings.subchain } else { 1 };
                let start = SubchainPoint {
                    m: s.m.clone(),
                    local: local.clone(),
                    phi: target.exact.misfit.cost(&local.q),
                };
                let mut run = mmala_subchain(parts, target, rho, start, steps, &mut rng);
                for e in std::mem::take(&mut run.failures) {
                    fail(&mut s, e);
                }
                (0..run.steps).for_each(|_| parts.count_geometry(&mut s));
                if parts.subchain {
                    s.subchain_steps += run.steps;
                    s.subchain_accepted += run.accepted;
                }
                c_proposal = Some(run.end.local.c.clone());
                let y = run.end.m.clone();
                subchain = Some(run);
                y
            }
            KernelKind::DaMmala => {
                let (parts, local) = (mmala.expect("mmala parts"), local.as_ref().expect("set"));
                let draw = prior.draw(&mut rng);
                // drift with the exact map's residual at x (known) and the geometry's J V
                let g_x = local.gradient(&s.q, data);
                let (y, c_y) = parts.subspace.propose(prior, &s.m, local, &g_x, rho, &draw);
                c_proposal = Some(c_y);
                y
            }
            KernelKind::Mala => {
                let w = prior.sample(&mut rng);
                c_grad = prior.covariance_mul(&s.gradient);
                s.m.iter()
                    .zip(&w)
                    .zip(prior.mean())
                    .zip(&c_grad)
                    .map(|(((m, w), mb), cg)| {
                        mb + ((2.0 - delta) * (m - mb) - 2.0 * delta * cg
                            + (8.0 * delta).sqrt() * (w - mb))
                            / (2.0 + delta)
                    })
                    .collect()
            }
            KernelKind::Pcn => {
                let xi = prior.sample(&mut rng);
                s.m.iter()
                    .zip(&xi)
                    .zip(prior.mean())
                    .map(|((m, x), mb)| mb + rho * (m - mb) + beta * (x - mb))
                    .collect()
            }
            _ => {
                let xi = lap.sample_deviation(prior, &mut rng);
                s.m.iter()
                    .zip(&xi)
                    .zip(&lap.mean)
                    .map(|((m, x), c)| c + rho * (m - c) + beta * x)
                    .collect()
            }
        };
        let (u1, u2): (f64, f64) = (rng.random(), rng.random());
        s.proposals += 1;
        // in the Laplace subspace the QoI coefficients are the mMALA coordinates, shifted:
        // Vᵀ R (y − m_MAP) = c_y − Vᵀ R (m_MAP − m̄); no R application needed
        let (ref_p, coef_p) = match (&c_proposal, &c_map) {
            (Some(c_y), Some(c_map)) => (0.0, (c_y - c_map).iter().take(k).copied().collect()),
            _ => geometry.at(target, settings.kernel, &proposal, k),
        };
        let mut accepted = None;
        let mut local_proposal = None;
        match (settings.kernel, target.screen) {
            (KernelKind::Hmc | KernelKind::DaHmc, _) => {
                let run = hmc_move.take().expect("set with the proposal");
                if run.accepted > 0 && settings.kernel == KernelKind::Hmc {
                    // the moves were exact Metropolis–Hastings steps on the chain's posterior
                    s.stage1_accepted += 1;
                    accepted = Some((run.end.phi, run.end.q.clone(), Vec::new()));
                    hmc_point = Some(run.end);
                } else if run.accepted > 0 {
                    s.stage1_accepted += 1;
                    s.exact_evaluations += 1;
                    let phi_c_x = hmc_point.as_ref().expect("set").phi;
                    match correct_coarse_move(
                        target.exact,
                        &proposal,
                        s.phi,
                        phi_c_x,
                        run.end.phi,
                        u1,
                    ) {
                        Err(e) => fail(&mut s, e),
                        Ok(None) => {}
                        Ok(Some((phi_y, q_y))) => {
                            accepted = Some((phi_y, q_y, run.end.q.clone()));
                            hmc_point = Some(run.end);
                        }
                    }
                }
            }
            (KernelKind::Mmala | KernelKind::DaSubchain, _) => {
                let run = subchain.take().expect("set with the proposal");
                if run.accepted > 0 && settings.kernel == KernelKind::Mmala {
                    // plain mMALA: the sub-chain's one step was the exact kernel
                    s.stage1_accepted += 1;
                    accepted = Some((run.end.phi, run.end.local.q.clone(), Vec::new()));
                    local_proposal = Some(run.end.local);
                } else if run.accepted > 0 {
                    // the PDE corrects the whole sub-chain
                    s.stage1_accepted += 1;
                    s.exact_evaluations += 1;
                    let phi_c_x = target.exact.misfit.cost(&local.as_ref().expect("set").q);
                    match correct_coarse_move(
                        target.exact,
                        &proposal,
                        s.phi,
                        phi_c_x,
                        run.end.phi,
                        u1,
                    ) {
                        Err(e) => fail(&mut s, e),
                        Ok(None) => {}
                        Ok(Some((phi_y, q_y))) => {
                            accepted = Some((phi_y, q_y, run.end.local.q.clone()));
                            local_proposal = Some(run.end.local);
                        }
                    }
                }
            }
            (KernelKind::DaMmala, _) => {
                let parts = mmala.expect("mmala parts");
                let local_x = local.as_ref().expect("set");
                let c_y = c_proposal.take().expect("set");
                parts.count_geometry(&mut s);
                let misfit = &target.exact.misfit;
                match parts.geometry(target, &proposal, c_y) {
                    Err(e) => fail(&mut s, e),
                    Ok(local_y) => {
                        let x_end = DaEnd {
                            local: local_x,
                            q: &s.q,
                        };
                        let a1 = da_mmala_stage1(misfit, rho, &x_end, &local_y);
                        if u1.ln() < a1 {
                            s.stage1_accepted += 1;
                            s.exact_evaluations += 1;
                            match target.exact.observe(&proposal) {
                                Err(e) => fail(&mut s, e),
                                Ok(q_y) => {
                                    let y_end = DaEnd {
                                        local: &local_y,
                                        q: &q_y,
                                    };
                                    let a2 = da_mmala_stage2(misfit, rho, &x_end, &y_end, a1);
                                    if u2.ln() < a2 {
                                        let phi_y = misfit.cost(&q_y);
                                        accepted = Some((phi_y, q_y, local_y.q.clone()));
                                        local_proposal = Some(local_y);
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (KernelKind::Da, Some(screen)) => {
                s.screen_evaluations += 1;
                match screen.observe(&proposal) {
                    Err(e) => fail(&mut s, e),
                    Ok(qs_y) => {
                        let misfit = &target.exact.misfit;
                        // Φ*_x(y) with q*_x(y) = q_s(y) + q(x) − q_s(x)
                        let corrected = |qs: &[f64], q_c: &[f64], qs_c: &[f64]| {
                            misfit.cost(&corrected(qs, q_c, qs_c))
                        };
                        let a1 = (s.phi + ref_m) - (corrected(&qs_y, &s.q, &s.q_screen) + ref_p);
                        if u1.ln() < a1 {
                            s.stage1_accepted += 1;
                            s.exact_evaluations += 1;
                            match target.exact.observe(&proposal) {
                                Err(e) => fail(&mut s, e),
                                Ok(q_y) => {
                                    let phi_y = misfit.cost(&q_y);
                                    let a1_rev = (phi_y + ref_p)
                                        - (corrected(&s.q_screen, &q_y, &qs_y) + ref_m);
                                    let a2 = (s.phi + ref_m) - (phi_y + ref_p) + a1_rev.min(0.0)
                                        - a1.min(0.0);
                                    if u2.ln() < a2 {
                                        accepted = Some((phi_y, q_y, qs_y));
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (KernelKind::Mala, _) => {
                s.exact_evaluations += 1;
                match target.exact.misfit_with_gradient(&proposal) {
                    Err(e) => fail(&mut s, e),
                    Ok((q, phi, g)) => {
                        let mb = prior.mean();
                        let u: Vec<f64> = s.m.iter().zip(mb).map(|(a, b)| a - b).collect();
                        let v: Vec<f64> = proposal.iter().zip(mb).map(|(a, b)| a - b).collect();
                        let c_g = prior.covariance_mul(&g);
                        let r = |phi: f64, u: &[f64], v: &[f64], g: &[f64], cg: &[f64]| {
                            let dot = |a: &[f64], b: &[f64]| {
                                a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>()
                            };
                            let diff: Vec<f64> = v.iter().zip(u).map(|(a, b)| a - b).collect();
                            let sum: Vec<f64> = v.iter().zip(u).map(|(a, b)| a + b).collect();
                            phi + 0.5 * dot(&diff, g)
                                + 0.25 * delta * dot(&sum, g)
                                + 0.25 * delta * dot(g, cg)
                        };
                        let log_a =
                            r(s.phi, &u, &v, &s.gradient, &c_grad) - r(phi, &v, &u, &g, &c_g);
                        if u1.ln() < log_a {
                            s.stage1_accepted += 1;
                            s.gradient = g;
                            accepted = Some((phi, q, Vec::new()));
                        }
                    }
                }
            }
            _ => {
                s.exact_evaluations += 1;
                match target.exact.observe(&proposal) {
                    Err(e) => fail(&mut s, e),
                    Ok(q) => {
                        let phi = target.exact.misfit.cost(&q);
                        if u1.ln() < (s.phi + ref_m) - (phi + ref_p) {
                            s.stage1_accepted += 1;
                            accepted = Some((phi, q, Vec::new()));
                        }
                    }
                }
            }
        }
        if let Some((phi, q, q_screen)) = accepted {
            s.accepted += 1;
            s.m = proposal;
            s.phi = phi;
            s.q = q;
            s.q_screen = q_screen;
            ref_m = ref_p;
            coef_m = coef_p;
            if local_proposal.is_some() {
                local = local_proposal;
            }
        }
        s.steps += 1;
        if s.steps > settings.burn_in {
            let mut q = vec![s.phi];
            q.extend_from_slice(&coef_m);
            s.qoi.push(q);
            for ((a, b), m) in s.sum.iter_mut().zip(s.sum_sq.iter_mut()).zip(&s.m) {
                *a += m;
                *b += m * m;
            }
            let every = settings.sample_every;
            if every > 0 && checkpoint.is_some() && (s.steps - settings.burn_in) % every == 0 {
                pending_samples.extend_from_slice(&s.m);
            }
        }
        progress.inc(1);
        if let Some(path) = checkpoint {
            if s.steps % settings.checkpoint_every.max(1) == 0 || s.steps == total {
                s.wall_s = wall_before + started.elapsed().as_secs_f64();
                // the trace rows first, then the state: a state never counts rows not on disk
                append_rows(&qoi_trace_path(path), &s.qoi[rows_written..].concat())?;
                rows_written = s.qoi.len();
                if settings.sample_every > 0 {
                    append_rows(&samples_path(path), &pending_samples)?;
                    pending_samples.clear();
                }
                let text = serde_json::to_string(&s).expect("serializable chain");
                write_atomic(path, |w| std::io::Write::write_all(w, text.as_bytes()))?;
            }
        }
    }
    // with checkpoints the last step's checkpoint set the wall time, so the state returned is the
    // state saved (and a finished chain that is resumed adds no time)
    if checkpoint.is_none() {
        s.wall_s = wall_before + started.elapsed().as_secs_f64();
    }
    Ok(s)
}

/// Stage 2 of the two-level kernels (`da-subchain`, `da-hmc`): a move x → y made by a kernel
/// reversible for the coarse posterior π_C ∝ exp(−Φ_C) × prior is accepted for the exact
/// posterior with log α = [Φ(x) − Φ_C(x)] − [Φ(y) − Φ_C(y)], one exact evaluation at y.
/// Returns (Φ(y), q(y)) when accepted.
fn correct_coarse_move(
    exact: &Posterior<'_>,
    y: &[f64],
    phi_x: f64,
    phi_c_x: f64,
    phi_c_y: f64,
    u: f64,
) -> Result<Option<(f64, Vec<f64>)>> {
    let q_y = exact.observe(y)?;
    let phi_y = exact.misfit.cost(&q_y);
    Ok((u.ln() < (phi_x - phi_c_x) - (phi_y - phi_c_y)).then_some((phi_y, q_y)))
}

/// `chain_C.qoi` beside the state file `chain_C.json`.
fn qoi_trace_path(state: &std::path::Path) -> PathBuf {
    state.with_extension("qoi")
}

/// `chain_C.samples` beside the state file `chain_C.json`: the saved states.
fn samples_path(state: &std::path::Path) -> PathBuf {
    state.with_extension("samples")
}

/// States saved after `steps` steps: every `sample_every`-th post-burn-in step.
fn saved_sample_rows(steps: usize, settings: &McmcSettings) -> usize {
    match settings.sample_every {
        0 => 0,
        k => steps.saturating_sub(settings.burn_in) / k,
    }
}

/// The states the chains saved (`McmcSettings::sample_every`), chain after chain: one row of
/// d_M per saved state, from the `chain_C.samples` files in `checkpoint_dir`.
pub fn read_saved_samples(
    checkpoint_dir: &std::path::Path,
    chains: &[ChainState],
    settings: &McmcSettings,
) -> Result<ndarray::Array2<f64>> {
    let d = chains.first().map_or(0, |c| c.m.len());
    let mut values = Vec::new();
    let mut rows = 0;
    for c in chains {
        let path = samples_path(&checkpoint_dir.join(format!("chain_{}.json", c.chain)));
        let n = saved_sample_rows(c.steps, settings);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        if bytes.len() < n * d * 8 {
            return Err(Error::invalid(
                path.display().to_string(),
                "saved samples",
                format!("{n} rows of {d} float64"),
                format!("{} bytes", bytes.len()),
            ));
        }
        values.extend(
            bytes[..n * d * 8]
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))),
        );
        rows += n;
    }
    Ok(ndarray::Array2::from_shape_vec((rows, d), values).expect("rows × d values"))
}

/// Appends rows (flat, little-endian f64) to a trace or samples file and syncs it.
fn append_rows(path: &std::path::Path, values: &[f64]) -> Result<()> {
    use std::io::Write;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    file.write_all(&bytes)
        .and_then(|_| file.sync_data())
        .map_err(|e| Error::io(path, e))
}

/// The first `rows` rows of `width` values of a trace file, which is cut to them (rows appended
/// after the last state was written are dropped); `None` when the file holds fewer.
fn read_qoi_trace(path: &std::path::Path, rows: usize, width: usize) -> Option<Vec<Vec<f64>>> {
    cut_rows(path, rows, width)?;
    let bytes = std::fs::read(path).ok()?;
    let values: Vec<f64> = bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    Some(values.chunks(width).map(<[f64]>::to_vec).collect())
}

/// Cuts a file of f64 rows of `width` to its first `rows` rows (rows appended after the last
/// state was written are dropped); `None` when it is missing or holds fewer.
fn cut_rows(path: &std::path::Path, rows: usize, width: usize) -> Option<()> {
    let need = (rows * width * 8) as u64;
    let len = std::fs::metadata(path).ok()?.len();
    if len < need {
        return None;
    }
    if len > need {
        let file = std::fs::OpenOptions::new().write(true).open(path).ok()?;
        file.set_len(need).ok()?;
    }
    Some(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::eigen::{columnwise, symmetric_eigen};
    use crate::map::DifferentiableMap;
    use crate::misfit::GaussianMisfit;
    use crate::models::ElementwiseQuadratic;
    use crate::rng::{stream, Purpose};
    use ndarray::Array2;

    /// π(x) K(x, y) α₁(x, y) α₂(x, y) = π(y) K(y, x) α₁(y, x) α₂(y, x) for the delayed-acceptance
    /// mMALA exponents, exactly, on pairs of states of a nonlinear exact map and a different
    /// nonlinear screen (the pCN complement is prior-reversible and cancels).
    #[test]
    fn delayed_acceptance_mmala_satisfies_detailed_balance() {
        let problem = crate::problem::Problem::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/problems/poisson.toml"
        ))
        .unwrap()
        .with_mesh(8)
        .unwrap();
        let prior = problem.prior().unwrap();
        let n = prior.dim();
        let b = Array2::from_shape_fn((5, n), |(i, j)| 0.3 * ((i * 7 + j * 3) as f64 * 0.37).sin());
        let exact = ElementwiseQuadratic {
            b: b.clone(),
            a: 0.3,
        };
        let screen = ElementwiseQuadratic { b: b * 1.1, a: 0.1 };
        let data: Vec<f64> = (0..5).map(|i| 0.2 * i as f64 - 0.3).collect();
        let misfit = GaussianMisfit::new(data, 0.05).unwrap();
        let screen_post = Posterior::new(&screen, &prior, misfit.clone()).unwrap();
        // an R-orthonormal basis of 4 prior draws
        let draws: Vec<Vec<f64>> = (0..4)
            .map(|k| prior.sample(&mut stream(3, Purpose::PriorSample, k)))
            .collect();
        let v0 = Array2::from_shape_fn((n, 4), |(i, j)| draws[j][i] - prior.mean()[i]);
        let gram = v0.t().dot(&columnwise(&v0, |c| prior.precision_mul(c)));
        let (d, w) = symmetric_eigen(&gram);
        let subspace = Subspace::new(
            &prior,
            v0.dot(&w) / d.mapv(f64::sqrt).insert_axis(ndarray::Axis(0)),
        );
        let jacobian = BasisJacobian::new(&screen_post, &subspace);
        let rho = 0.6;
        let mut stage1_rejections = 0;
        for pair in 0..8u64 {
            let x = prior.sample(&mut stream(1, Purpose::PriorSample, pair));
            let step = prior.sample(&mut stream(2, Purpose::PriorSample, pair));
            let y: Vec<f64> = x
                .iter()
                .zip(&step)
                .zip(prior.mean())
                .map(|((x, s), m)| x + 0.3 * (s - m))
                .collect();
            let geometry = |m: &[f64]| {
                let c = subspace.coordinates(&prior, m);
                LocalGeometry::at(&screen_post, &jacobian, &subspace, m, c).unwrap()
            };
            let (lx, ly) = (geometry(&x), geometry(&y));
            let (qx, qy) = (exact.evaluate(&x).unwrap(), exact.evaluate(&y).unwrap());
            let (ex, ey) = (DaEnd { local: &lx, q: &qx }, DaEnd { local: &ly, q: &qy });
            let log_flow = |from: &DaEnd<'_>, to: &DaEnd<'_>| {
                let g = from.local.gradient(from.q, misfit.data());
                let a1 = da_mmala_stage1(&misfit, rho, from, to.local);
                let a2 = da_mmala_stage2(&misfit, rho, from, to, a1);
                let log_pi = -misfit.cost(from.q) - 0.5 * from.local.c.dot(&from.local.c);
                (
                    log_pi
                        + from.local.log_proposal_density(rho, &g, &to.local.c)
                        + a1.min(0.0)
                        + a2.min(0.0),
                    a1,
                )
            };
            let ((forward, a1), (backward, a1_rev)) = (log_flow(&ex, &ey), log_flow(&ey, &ex));
            stage1_rejections += usize::from(a1 < 0.0) + usize::from(a1_rev < 0.0);
            assert!(
                (forward - backward).abs() < 1e-9 * forward.abs().max(1.0),
                "pair {pair}: log flow x → y {forward} vs y → x {backward}"
            );
        }
        assert!(stage1_rejections > 0, "stage 1 matters on these pairs");
    }
}
