//! The kernel interface the chain driver runs: a kernel proposes from the current state, the
//! driver draws the two uniforms u₁, u₂ of the step (always, whether a kernel needs them or
//! not, so that every kernel's randomness is laid out the same way), and the kernel accepts or
//! rejects. Kernels count their map evaluations and record failed proposals in the
//! [`ChainState`] they are given; the driver does everything else.

use ndarray::Array1;
use rand_chacha::ChaCha8Rng;

use super::{ChainState, ProposalFailure};
use crate::error::Error;

/// The two uniforms of a step, drawn after the proposal's draws.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Uniforms {
    pub u1: f64,
    pub u2: f64,
}

/// An accepted move: the new state with what the chain keeps of it.
pub(crate) struct Moved<S> {
    pub m: Vec<f64>,
    /// Φ and q of the exact posterior at m, q_s of the screening surrogate (or empty).
    pub phi: f64,
    pub q: Vec<f64>,
    pub q_screen: Vec<f64>,
    /// The subspace coordinates c = Vᵀ R (m − m̄) when the kernel has them (mMALA, HMC).
    pub coordinates: Option<Array1<f64>>,
    /// The kernel's own state at m.
    pub state: S,
}

/// A Markov kernel for the chain's posterior.
pub(crate) trait Kernel: Sync {
    /// What the kernel keeps of the current state besides the [`ChainState`] (a local
    /// geometry, an HMC point, a reference term).
    type State: Clone + Send;
    /// A proposal, with whatever its acceptance needs.
    type Proposal;

    /// The kernel's state at the chain's current m (counting its evaluations).
    fn init(&self, chain: &mut ChainState) -> crate::error::Result<Self::State>;

    /// Proposes from the current state with the step's randomness (before u₁, u₂).
    fn propose(
        &self,
        chain: &mut ChainState,
        x: &Self::State,
        rng: &mut ChaCha8Rng,
    ) -> Self::Proposal;

    /// Accepts (`Some`) or rejects the proposal with the step's uniforms.
    fn accept(
        &self,
        chain: &mut ChainState,
        x: &Self::State,
        y: Self::Proposal,
        u: Uniforms,
    ) -> Option<Moved<Self::State>>;
}

impl ChainState {
    /// Records a proposal that could not be evaluated at the current step (the first 100).
    pub(crate) fn record_failure(&mut self, e: Error) {
        if self.failures.len() < 100 {
            self.failures.push(ProposalFailure {
                chain: self.chain,
                step: self.steps,
                reason: e.to_string(),
            });
        }
    }
}
