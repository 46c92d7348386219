//! **mMALA** (subspace manifold MALA, [`crate::inference::mmala`]): a Langevin proposal with
//! the map's local Gauss–Newton Hessian and gradient in the Laplace subspace, pCN in its
//! complement; position-dependent, so every proposal needs the map's Jacobian on the subspace.
//! One step is the `mmala` kernel on the exact posterior.
//!
//! **Surrogate sub-chains** (`da-subchain`, the coarse kernel of the two-level
//! [`super::delayed`] form): the proposal is the end point y of n = `subchain` mMALA steps on
//! the *coarse* posterior π_C ∝ exp(−Φ_C) × prior, Φ_C(m) = ½‖q_C(m) − d‖²_{Γ⁻¹},
//! q_C = q_s + e₀ + ΔJ (m − m₀) the surrogate corrected to match the PDE's value and Jacobian
//! at the chain's centre m₀ (the PDE MAP; [`crate::inference::mmala::AffineCorrection`]), a
//! fixed correction so that π_C does not depend on the state. A π_C-reversible kernel K gives
//! a π_C-reversible Kⁿ; the PDE is consulted once every n surrogate steps (none when the
//! sub-chain did not move), so long moves cost what a single DA step costs.

use crate::misfit::Misfit;
use ndarray::Array1;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::delayed::Screen;
use super::kernel::{Kernel, Moved, Uniforms};
use super::{ChainState, Target};
use crate::error::{Error, Result};
use crate::inference::mmala::{log_reference_ratio, BasisJacobian, LocalGeometry, Subspace};
use crate::inference::posterior::Posterior;

/// The map whose local geometry drives an mMALA proposal: the exact map, the screening
/// surrogate (`da-mmala`) or the corrected coarse map (`da-subchain`), with J V.
pub(super) struct LocalMap<'a> {
    pub target: &'a Target<'a>,
    pub post: &'a Posterior<'a>,
    pub jacobian: &'a BasisJacobian,
    pub subspace: &'a Subspace,
    /// Whether the map is the surrogate (its evaluations count as screen evaluations).
    pub surrogate: bool,
}

impl LocalMap<'_> {
    /// The local geometry at m with coordinates c (one evaluation with derivatives).
    pub(super) fn geometry(&self, m: &[f64], c: Array1<f64>) -> Result<LocalGeometry> {
        LocalGeometry::at(self.post, self.jacobian, self.subspace, m, c)
    }

    /// Counts one [`Self::geometry`] evaluation against the map that made it.
    pub(super) fn count(&self, s: &mut ChainState) {
        if self.surrogate {
            s.screen_evaluations += 1;
        } else {
            s.exact_evaluations += 1;
        }
    }

    /// The local geometry at the chain's current m (recomputed on resume).
    pub(super) fn start(&self, chain: &mut ChainState) -> Result<LocalGeometry> {
        let c = self.subspace.coordinates(self.target.exact.prior, &chain.m);
        self.count(chain);
        self.geometry(&chain.m, c)
    }
}

/// A state of an mMALA sub-chain: the point, the local geometry there and the misfit of the
/// sub-chain's target at it.
pub(super) struct SubchainPoint {
    m: Vec<f64>,
    local: LocalGeometry,
    phi: f64,
}

/// What a sub-chain did: its end point and how many of its steps were accepted.
pub(super) struct SubchainOutcome {
    end: SubchainPoint,
    accepted: usize,
}

/// `steps` mMALA steps reversible for exp(−Φ) × prior, Φ = ½‖q − d‖²_{Γ⁻¹} with q the output
/// of the kernel's [`LocalMap`], which also gives the local geometry and the drift.
pub(super) struct Mmala<'a> {
    pub map: LocalMap<'a>,
    pub rho: f64,
    pub steps: usize,
    /// Whether the sub-chain is the coarse kernel of `da-subchain` (its steps are counted).
    pub two_level: bool,
}

impl Mmala<'_> {
    fn run(&self, start: SubchainPoint, rng: &mut ChaCha8Rng) -> (SubchainOutcome, Vec<Error>) {
        let prior = self.map.target.exact.prior;
        let misfit = &self.map.target.exact.misfit;
        let data = misfit.data();
        let mut x = start;
        let (mut accepted, mut failures) = (0, Vec::new());
        for _ in 0..self.steps {
            let draw = prior.draw(rng);
            let g_x = x.local.gradient(&x.local.q, data);
            let (y, c_y) = self
                .map
                .subspace
                .propose(prior, &x.m, &x.local, &g_x, self.rho, &draw);
            let u: f64 = rng.random();
            match self.map.geometry(&y, c_y) {
                Err(e) => failures.push(e),
                Ok(local_y) => {
                    let phi_y = misfit.cost(&local_y.q);
                    let g_y = local_y.gradient(&local_y.q, data);
                    let g = log_reference_ratio(&x.local, &g_x, &local_y, &g_y, self.rho);
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
        (SubchainOutcome { end: x, accepted }, failures)
    }

    /// The move to the sub-chain's end with the exact Φ and q there.
    fn moved(
        end: SubchainPoint,
        phi: f64,
        q: Vec<f64>,
        q_screen: Vec<f64>,
    ) -> Moved<LocalGeometry> {
        Moved {
            m: end.m,
            phi,
            q,
            q_screen,
            coordinates: Some(end.local.c.clone()),
            state: end.local,
        }
    }
}

impl Kernel for Mmala<'_> {
    type State = LocalGeometry;
    type Proposal = SubchainOutcome;

    fn init(&self, chain: &mut ChainState) -> Result<LocalGeometry> {
        self.map.start(chain)
    }

    fn propose(
        &self,
        chain: &mut ChainState,
        x: &LocalGeometry,
        rng: &mut ChaCha8Rng,
    ) -> SubchainOutcome {
        let start = SubchainPoint {
            m: chain.m.clone(),
            local: x.clone(),
            phi: self.map.target.exact.misfit.cost(&x.q),
        };
        let (run, failures) = self.run(start, rng);
        for e in failures {
            chain.record_failure(e);
        }
        (0..self.steps).for_each(|_| self.map.count(chain));
        if self.two_level {
            chain.subchain_steps += self.steps;
            chain.subchain_accepted += run.accepted;
        }
        run
    }

    /// Plain mMALA: the sub-chain's one step was the exact kernel.
    fn accept(
        &self,
        chain: &mut ChainState,
        _: &LocalGeometry,
        y: SubchainOutcome,
        _: Uniforms,
    ) -> Option<Moved<LocalGeometry>> {
        (y.accepted > 0).then(|| {
            chain.stage1_accepted += 1;
            let (phi, q) = (y.end.phi, y.end.local.q.clone());
            Self::moved(y.end, phi, q, Vec::new())
        })
    }
}

impl Screen for Mmala<'_> {
    type State = LocalGeometry;
    type Proposal = SubchainOutcome;
    type Passed = SubchainOutcome;

    fn init(&self, chain: &mut ChainState) -> Result<LocalGeometry> {
        self.map.start(chain)
    }

    fn propose(
        &self,
        chain: &mut ChainState,
        x: &LocalGeometry,
        rng: &mut ChaCha8Rng,
    ) -> SubchainOutcome {
        Kernel::propose(self, chain, x, rng)
    }

    /// The sub-chain's own accept/reject was stage 1: it passes when it moved.
    fn stage1(
        &self,
        _: &mut ChainState,
        _: &LocalGeometry,
        y: SubchainOutcome,
        u: Uniforms,
    ) -> Option<(SubchainOutcome, f64)> {
        (y.accepted > 0).then_some((y, u.u1))
    }

    fn point<'p>(&self, y: &'p SubchainOutcome) -> &'p [f64] {
        &y.end.m
    }

    /// log α₂ = [Φ(x) − Φ_C(x)] − [Φ(y) − Φ_C(y)].
    fn stage2(
        &self,
        chain: &ChainState,
        x: &LocalGeometry,
        y: SubchainOutcome,
        q_y: Vec<f64>,
        phi_y: f64,
    ) -> (f64, Moved<LocalGeometry>) {
        let phi_c_x = self.map.target.exact.misfit.cost(&x.q);
        let log_a2 = (chain.phi - phi_c_x) - (phi_y - y.end.phi);
        let q_c = y.end.local.q.clone();
        (log_a2, Self::moved(y.end, phi_y, q_y, q_c))
    }
}
