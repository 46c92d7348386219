//! pCN and gpCN: an autoregressive proposal reversible for a Gaussian reference μ_ref, accepted
//! with min(1, exp(η(m) − η(m'))), η = −log(dπ/dμ_ref):
//!
//! - **pCN**: μ_ref = prior, m' = m̄ + ρ (m − m̄) + β (s − m̄), s ~ N(m̄, C); η = Φ.
//! - **gpCN** (geometric, Laplace-preconditioned): μ_ref = N(m_MAP, Γ_post) from the Laplace
//!   approximation (the GN Hessian of whichever map built it, e.g. the surrogate's, in its
//!   reduced basis), m' = m_MAP + ρ (m − m_MAP) + β ξ, ξ ~ N(0, Γ_post);
//!   η = Φ + ½‖m − m̄‖²_R − ½‖m − m_MAP‖²_R − ½ Σ λ_i (v_iᵀ R (m − m_MAP))²
//!   ([`super::reference`]).
//!
//! ρ = √(1 − β²) with step β ∈ (0, 1].

use crate::misfit::Misfit;
use rand_chacha::ChaCha8Rng;

use super::delayed::{corrected, Screen};
use super::kernel::{Kernel, Moved, Uniforms};
use super::reference::LaplaceTerms;
use super::{ChainState, Target};
use crate::inference::posterior::Posterior;

/// The reference Gaussian of a pCN kernel.
pub(super) enum Reference {
    /// The prior (pCN): η's reference part is 0.
    Prior,
    /// The Laplace approximation (gpCN).
    Laplace(LaplaceTerms),
}

/// The pCN proposal for a reference Gaussian, and η's reference part.
pub(super) struct PcnProposal<'a> {
    pub target: &'a Target<'a>,
    pub reference: Reference,
    pub rho: f64,
    pub beta: f64,
}

impl PcnProposal<'_> {
    /// η's reference part at m (0 for the prior).
    pub(super) fn eta_reference(&self, m: &[f64]) -> f64 {
        match &self.reference {
            Reference::Prior => 0.0,
            Reference::Laplace(terms) => terms.reference(self.target, m),
        }
    }

    /// The proposal from m with its η reference part.
    pub(super) fn point(&self, m: &[f64], rng: &mut ChaCha8Rng) -> PcnPoint {
        let m = self.propose(m, rng);
        let eta_reference = self.eta_reference(&m);
        PcnPoint { m, eta_reference }
    }

    /// m' = c + ρ (m − c) + β ξ about the reference mean c.
    fn propose(&self, m: &[f64], rng: &mut ChaCha8Rng) -> Vec<f64> {
        let (prior, rho, beta) = (self.target.exact.prior, self.rho, self.beta);
        match self.reference {
            Reference::Prior => {
                let xi = prior.sample(rng);
                m.iter()
                    .zip(&xi)
                    .zip(prior.mean())
                    .map(|((m, x), mb)| mb + rho * (m - mb) + beta * (x - mb))
                    .collect()
            }
            Reference::Laplace(_) => {
                let lap = self.target.laplace;
                let xi = lap.sample_deviation(prior, rng);
                m.iter()
                    .zip(&xi)
                    .zip(&lap.mean)
                    .map(|((m, x), c)| c + rho * (m - c) + beta * x)
                    .collect()
            }
        }
    }
}

/// A pCN proposal with its η reference part.
pub(super) struct PcnPoint {
    pub m: Vec<f64>,
    pub eta_reference: f64,
}

/// The pCN / gpCN kernel on the exact posterior; its state is η's reference part at m.
pub(super) struct Pcn<'a>(pub PcnProposal<'a>);

impl Kernel for Pcn<'_> {
    type State = f64;
    type Proposal = PcnPoint;

    fn init(&self, chain: &mut ChainState) -> crate::error::Result<f64> {
        Ok(self.0.eta_reference(&chain.m))
    }

    fn propose(&self, chain: &mut ChainState, _: &f64, rng: &mut ChaCha8Rng) -> PcnPoint {
        self.0.point(&chain.m, rng)
    }

    fn accept(
        &self,
        chain: &mut ChainState,
        ref_m: &f64,
        y: PcnPoint,
        u: Uniforms,
    ) -> Option<Moved<f64>> {
        let exact = self.0.target.exact;
        chain.exact_evaluations += 1;
        match exact.observe(&y.m) {
            Err(e) => {
                chain.record_failure(e);
                None
            }
            Ok(q) => {
                let phi = exact.misfit.cost(&q);
                let ref_p = y.eta_reference;
                (u.u1.ln() < (chain.phi + ref_m) - (phi + ref_p)).then(|| {
                    chain.stage1_accepted += 1;
                    Moved {
                        m: y.m,
                        phi,
                        q,
                        q_screen: Vec::new(),
                        coordinates: None,
                        state: ref_p,
                    }
                })
            }
        }
    }
}

/// The gpCN proposal screened by the corrected surrogate (the `da` kernel's [`Screen`], the
/// Christen–Fox form): η*_x = Φ(q*_x) + η's reference part, q*_x = q_s + q(x) − q_s(x).
pub(super) struct GpcnScreen<'a> {
    pub proposal: PcnProposal<'a>,
    pub surrogate: &'a Posterior<'a>,
}

/// A gpCN proposal that passed stage 1: q_s(y) and log α₁(x, y).
pub(super) struct ScreenedPoint {
    y: PcnPoint,
    qs_y: Vec<f64>,
    a1: f64,
}

impl GpcnScreen<'_> {
    /// Φ*_c(z) with q*_c(z) = q_s(z) + q(c) − q_s(c).
    fn corrected_cost(&self, qs: &[f64], q_c: &[f64], qs_c: &[f64]) -> f64 {
        self.proposal
            .target
            .exact
            .misfit
            .cost(&corrected(qs, q_c, qs_c))
    }
}

impl Screen for GpcnScreen<'_> {
    type State = f64;
    type Proposal = PcnPoint;
    type Passed = ScreenedPoint;

    fn init(&self, chain: &mut ChainState) -> crate::error::Result<f64> {
        Ok(self.proposal.eta_reference(&chain.m))
    }

    fn propose(&self, chain: &mut ChainState, _: &f64, rng: &mut ChaCha8Rng) -> PcnPoint {
        self.proposal.point(&chain.m, rng)
    }

    fn stage1(
        &self,
        chain: &mut ChainState,
        ref_m: &f64,
        y: PcnPoint,
        u: Uniforms,
    ) -> Option<(ScreenedPoint, f64)> {
        chain.screen_evaluations += 1;
        let qs_y = self
            .surrogate
            .observe(&y.m)
            .map_err(|e| chain.record_failure(e))
            .ok()?;
        let a1 = (chain.phi + ref_m)
            - (self.corrected_cost(&qs_y, &chain.q, &chain.q_screen) + y.eta_reference);
        (u.u1.ln() < a1).then_some((ScreenedPoint { y, qs_y, a1 }, u.u2))
    }

    fn point<'p>(&self, y: &'p ScreenedPoint) -> &'p [f64] {
        &y.y.m
    }

    fn stage2(
        &self,
        chain: &ChainState,
        ref_m: &f64,
        y: ScreenedPoint,
        q_y: Vec<f64>,
        phi_y: f64,
    ) -> (f64, Moved<f64>) {
        let ref_p = y.y.eta_reference;
        let a1_rev =
            (phi_y + ref_p) - (self.corrected_cost(&chain.q_screen, &q_y, &y.qs_y) + ref_m);
        let a2 = (chain.phi + ref_m) - (phi_y + ref_p) + a1_rev.min(0.0) - y.a1.min(0.0);
        let moved = Moved {
            m: y.y.m,
            phi: phi_y,
            q: q_y,
            q_screen: y.qs_y,
            coordinates: None,
            state: ref_p,
        };
        (a2, moved)
    }
}
