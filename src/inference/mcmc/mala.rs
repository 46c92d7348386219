//! **∞-MALA** (pCN-Langevin, Cotter–Roberts–Stuart–White 2013): with u = m − m̄,
//! v = [(2 − δ) u − 2δ C∇Φ(m) + √(8δ) w]/(2 + δ), w ~ N(0, C), accepted with
//! min(1, exp(r(u, v) − r(v, u))), with
//! r(u, v) = Φ(u) + ½⟨v − u, ∇Φ(u)⟩ + (δ/4)⟨u + v, ∇Φ(u)⟩ + (δ/4)⟨∇Φ(u), C∇Φ(u)⟩; ρ = (2 − δ)/(2 + δ) (= (4 − h)/(4 + h) with h = 2δ). The chain
//! keeps ∇Φ(m) in [`ChainState::gradient`].

use rand_chacha::ChaCha8Rng;

use super::kernel::{Kernel, Moved, Uniforms};
use super::ChainState;
use crate::inference::posterior::Posterior;

/// The ∞-MALA kernel with δ = 2 (1 − ρ)/(1 + ρ).
pub(super) struct Mala<'a> {
    pub exact: &'a Posterior<'a>,
    pub delta: f64,
}

/// A proposal v and C∇Φ(u) at the current state.
pub(super) struct MalaProposal {
    m: Vec<f64>,
    c_grad: Vec<f64>,
}

impl Mala<'_> {
    /// r(u, v) at Φ(u), ∇Φ(u) = g and C∇Φ(u) = cg.
    fn r(&self, phi: f64, u: &[f64], v: &[f64], g: &[f64], cg: &[f64]) -> f64 {
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let diff: Vec<f64> = v.iter().zip(u).map(|(a, b)| a - b).collect();
        let sum: Vec<f64> = v.iter().zip(u).map(|(a, b)| a + b).collect();
        phi + 0.5 * dot(&diff, g)
            + 0.25 * self.delta * dot(&sum, g)
            + 0.25 * self.delta * dot(g, cg)
    }
}

impl Kernel for Mala<'_> {
    type State = ();
    type Proposal = MalaProposal;

    fn init(&self, _: &mut ChainState) -> crate::error::Result<()> {
        Ok(())
    }

    fn propose(&self, chain: &mut ChainState, _: &(), rng: &mut ChaCha8Rng) -> MalaProposal {
        let prior = self.exact.prior;
        let delta = self.delta;
        let w = prior.sample(rng);
        let c_grad = prior.covariance_mul(&chain.gradient);
        let m = chain
            .m
            .iter()
            .zip(&w)
            .zip(prior.mean())
            .zip(&c_grad)
            .map(|(((m, w), mb), cg)| {
                mb + ((2.0 - delta) * (m - mb) - 2.0 * delta * cg + (8.0 * delta).sqrt() * (w - mb))
                    / (2.0 + delta)
            })
            .collect();
        MalaProposal { m, c_grad }
    }

    fn accept(
        &self,
        chain: &mut ChainState,
        _: &(),
        y: MalaProposal,
        u: Uniforms,
    ) -> Option<Moved<()>> {
        chain.exact_evaluations += 1;
        let (q, phi, g) = match self.exact.misfit_with_gradient(&y.m) {
            Err(e) => {
                chain.record_failure(e);
                return None;
            }
            Ok(v) => v,
        };
        let prior = self.exact.prior;
        let mb = prior.mean();
        let uu: Vec<f64> = chain.m.iter().zip(mb).map(|(a, b)| a - b).collect();
        let v: Vec<f64> = y.m.iter().zip(mb).map(|(a, b)| a - b).collect();
        let c_g = prior.covariance_mul(&g);
        let log_a =
            self.r(chain.phi, &uu, &v, &chain.gradient, &y.c_grad) - self.r(phi, &v, &uu, &g, &c_g);
        (u.u1.ln() < log_a).then(|| {
            chain.stage1_accepted += 1;
            chain.gradient = g;
            Moved {
                m: y.m,
                phi,
                q,
                q_screen: Vec::new(),
                coordinates: None,
                state: (),
            }
        })
    }
}
