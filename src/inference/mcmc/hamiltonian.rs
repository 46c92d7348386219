//! **HMC** in the Laplace subspace with the Gauss–Newton mass matrix at the MAP, pCN in its
//! complement ([`crate::inference::hmc`]): one move is `subchain` HMC transitions and one
//! complement step, each an exact Metropolis–Hastings step for the posterior of the map it
//! runs on. `hmc` runs on the chain's own map; `da-hmc` runs it on the corrected surrogate
//! q_C, a fixed coarse posterior π_C, and corrects each move that changed the state with one
//! PDE solve (the two-level form of [`super::delayed`]).

use rand_chacha::ChaCha8Rng;

use super::delayed::Screen;
use super::kernel::{Kernel, Moved, Uniforms};
use super::ChainState;
use crate::error::Result;
use crate::inference::hmc::{HmcMove, HmcPoint, SubspaceHmc};

/// Subspace HMC moves, on the chain's posterior or as the coarse kernel of `da-hmc`.
pub(super) struct Hmc<'a> {
    pub hmc: &'a SubspaceHmc<'a>,
    pub mean: &'a [f64],
    pub rho: f64,
    /// Whether HMC runs on the surrogate (`da-hmc`: its evaluations count as screen ones).
    pub two_level: bool,
}

/// A move with the parameter y = m̄ + V c + m⊥ it ended at.
pub(super) struct HmcProposal {
    run: HmcMove,
    m: Vec<f64>,
}

impl HmcProposal {
    fn moved(self, phi: f64, q: Vec<f64>, q_screen: Vec<f64>) -> Moved<HmcPoint> {
        Moved {
            m: self.m,
            phi,
            q,
            q_screen,
            coordinates: Some(self.run.end.c.clone()),
            state: self.run.end,
        }
    }
}

impl Kernel for Hmc<'_> {
    type State = HmcPoint;
    type Proposal = HmcProposal;

    fn init(&self, chain: &mut ChainState) -> Result<HmcPoint> {
        chain.screen_evaluations += usize::from(self.two_level);
        self.hmc.start(&chain.m)
    }

    fn propose(&self, chain: &mut ChainState, x: &HmcPoint, rng: &mut ChaCha8Rng) -> HmcProposal {
        let mut run = self.hmc.sweep(x.clone(), self.rho, rng);
        for e in std::mem::take(&mut run.failures) {
            chain.record_failure(e);
        }
        match self.two_level {
            true => chain.screen_evaluations += run.evaluations,
            false => chain.exact_evaluations += run.evaluations,
        }
        chain.subchain_steps += run.transitions;
        chain.subchain_accepted += run.accepted;
        let m = run.end.parameter(self.hmc.subspace(), self.mean);
        HmcProposal { run, m }
    }

    /// Plain HMC: the moves were exact Metropolis–Hastings steps on the chain's posterior.
    fn accept(
        &self,
        chain: &mut ChainState,
        _: &HmcPoint,
        y: HmcProposal,
        _: Uniforms,
    ) -> Option<Moved<HmcPoint>> {
        (y.run.accepted > 0).then(|| {
            chain.stage1_accepted += 1;
            let (phi, q) = (y.run.end.phi, y.run.end.q.clone());
            y.moved(phi, q, Vec::new())
        })
    }
}

impl Screen for Hmc<'_> {
    type State = HmcPoint;
    type Proposal = HmcProposal;
    type Passed = HmcProposal;

    fn init(&self, chain: &mut ChainState) -> Result<HmcPoint> {
        Kernel::init(self, chain)
    }

    fn propose(&self, chain: &mut ChainState, x: &HmcPoint, rng: &mut ChaCha8Rng) -> HmcProposal {
        Kernel::propose(self, chain, x, rng)
    }

    /// The coarse chain's own accept/reject was stage 1: the move passes when it moved.
    fn stage1(
        &self,
        _: &mut ChainState,
        _: &HmcPoint,
        y: HmcProposal,
        u: Uniforms,
    ) -> Option<(HmcProposal, f64)> {
        (y.run.accepted > 0).then_some((y, u.u1))
    }

    fn point<'p>(&self, y: &'p HmcProposal) -> &'p [f64] {
        &y.m
    }

    /// log α₂ = [Φ(x) − Φ_C(x)] − [Φ(y) − Φ_C(y)].
    fn stage2(
        &self,
        chain: &ChainState,
        x: &HmcPoint,
        y: HmcProposal,
        q_y: Vec<f64>,
        phi_y: f64,
    ) -> (f64, Moved<HmcPoint>) {
        let log_a2 = (chain.phi - x.phi) - (phi_y - y.run.end.phi);
        let q_c = y.run.end.q.clone();
        (log_a2, y.moved(phi_y, q_y, q_c))
    }
}
