//! **Delayed acceptance**: a coarse kernel's proposal y, screened cheaply, is corrected by the
//! exact posterior π so that the chain targets π exactly while most rejections cost only a
//! surrogate call. One combinator, `DelayedAcceptance`, over a `Screen`: stage 1 is the
//! screen's own test, stage 2 one exact forward solve at y and the screen's stage-2 exponent.
//! The screens come in two forms of the same Metropolis–Hastings correction for the effective
//! proposal "K, then stage 1":
//!
//! - **Christen & Fox (2005)**, with a state-dependent approximation (`da`, `da-mmala`): at the
//!   current state x the surrogate is corrected by its known error,
//!   q*_x(z) = q_s(z) + q(x) − q_s(x), so what stage 1 sees is the surrogate's error
//!   *difference* between x and the proposal, ≈ (∇q_s − ∇q)(y − x) — small exactly when the
//!   surrogate's Jacobian is accurate (the point of derivative-informed training). Stage 1
//!   accepts y with α₁(x, y) = min(1, exp(η*_x(x) − η*_x(y))) (with u₁); stage 2 with
//!   α₂ = min(1, exp(η(x) − η(y)) α₁(y, x) / α₁(x, y)) (with u₂), where α₁(y, x) uses q*_y
//!   and needs only q(y), which stage 2 has just computed.
//! - **Two-level** (`da-subchain`, `da-hmc`; multilevel delayed acceptance of Lykkegaard,
//!   Dodwell, Fox, Mingas & Scheichl 2023, or Liu's surrogate transition method): the coarse
//!   kernel K is reversible for a *fixed* coarse posterior π_C ∝ exp(−Φ_C) × prior, so K and
//!   Kⁿ are, and "K, then stage 1" is K itself, whose own accept/reject (made with its own
//!   draws) is stage 1: a move passes when the coarse chain moved at all. The Metropolis–
//!   Hastings ratio of the move for π is π(y) π_C(x) / (π(x) π_C(y)):
//!   log α₂ = [Φ(x) − Φ_C(x)] − [Φ(y) − Φ_C(y)], tested with u₁ (stage 1 spent none of the
//!   step's uniforms).
//!
//! Both are the same rule — α₂ = min(1, π(y) Q(y, x) / (π(x) Q(x, y))) for the screened
//! proposal Q = α₁ K — written out for a state-dependent and for a fixed approximation.

use crate::misfit::Misfit;
use rand_chacha::ChaCha8Rng;

use super::kernel::{Kernel, Moved, Uniforms};
use super::ChainState;
use crate::inference::posterior::Posterior;

/// The coarse half of a delayed-acceptance kernel: the proposal, stage 1, and the exponent of
/// stage 2.
pub(super) trait Screen: Sync {
    type State: Clone + Send;
    type Proposal;
    /// What stage 2 needs of a proposal that passed stage 1.
    type Passed;

    /// The screen's state at the chain's current m (counting its evaluations).
    fn init(&self, chain: &mut ChainState) -> crate::error::Result<Self::State>;

    /// The coarse kernel's proposal (before the step's uniforms are drawn).
    fn propose(
        &self,
        chain: &mut ChainState,
        x: &Self::State,
        rng: &mut ChaCha8Rng,
    ) -> Self::Proposal;

    /// Stage 1: the proposal that passed, with the uniform stage 2 tests against (u₂ when
    /// stage 1 used u₁, else u₁); `None` when it was screened out (or could not be evaluated).
    fn stage1(
        &self,
        chain: &mut ChainState,
        x: &Self::State,
        y: Self::Proposal,
        u: Uniforms,
    ) -> Option<(Self::Passed, f64)>;

    /// The point y of a proposal that passed.
    fn point<'p>(&self, y: &'p Self::Passed) -> &'p [f64];

    /// Stage 2: log α₂ (before clipping) from the exact q(y) and Φ(y), and the move to y.
    fn stage2(
        &self,
        chain: &ChainState,
        x: &Self::State,
        y: Self::Passed,
        q_y: Vec<f64>,
        phi_y: f64,
    ) -> (f64, Moved<Self::State>);
}

/// A screen corrected by the exact posterior.
pub(super) struct DelayedAcceptance<'a, S> {
    pub screen: S,
    pub exact: &'a Posterior<'a>,
}

impl<S: Screen> Kernel for DelayedAcceptance<'_, S> {
    type State = S::State;
    type Proposal = S::Proposal;

    fn init(&self, chain: &mut ChainState) -> crate::error::Result<S::State> {
        self.screen.init(chain)
    }

    fn propose(&self, chain: &mut ChainState, x: &S::State, rng: &mut ChaCha8Rng) -> S::Proposal {
        self.screen.propose(chain, x, rng)
    }

    fn accept(
        &self,
        chain: &mut ChainState,
        x: &S::State,
        y: S::Proposal,
        u: Uniforms,
    ) -> Option<Moved<S::State>> {
        let (y, u_stage2) = self.screen.stage1(chain, x, y, u)?;
        chain.stage1_accepted += 1;
        chain.exact_evaluations += 1;
        match self.exact.observe(self.screen.point(&y)) {
            Err(e) => {
                chain.record_failure(e);
                None
            }
            Ok(q_y) => {
                let phi_y = self.exact.misfit.cost(&q_y);
                let (log_a2, moved) = self.screen.stage2(chain, x, y, q_y, phi_y);
                (u_stage2.ln() < log_a2).then_some(moved)
            }
        }
    }
}

/// q*_c(z) = q_s(z) + q(c) − q_s(c): the surrogate output at z corrected by its known error at
/// a centre c.
pub(super) fn corrected(qs: &[f64], q_c: &[f64], qs_c: &[f64]) -> Vec<f64> {
    qs.iter()
        .zip(q_c)
        .zip(qs_c)
        .map(|((a, b), c)| a + b - c)
        .collect()
}
