//! **Delayed acceptance with mMALA** (DA-DINO-mMALA of Cao et al. 2024; the Christen–Fox form
//! of [`super::delayed`]): the mMALA proposal built from the *surrogate's* local geometry,
//! stage 1 on the corrected surrogate q*_x = q_s + q(x) − q_s(x), stage 2 with the PDE (a
//! forward solve only, no PDE derivatives). The Laplace terms of η are replaced by the mMALA
//! log-ratio G(x, y) of [`crate::inference::mmala::log_reference_ratio`].

use crate::misfit::Misfit;
use ndarray::Array1;
use rand_chacha::ChaCha8Rng;

use super::delayed::{corrected, Screen};
use super::kernel::{Moved, Uniforms};
use super::manifold::LocalMap;
use super::ChainState;
use crate::error::Result;
use crate::inference::mmala::{log_reference_ratio, LocalGeometry};
use crate::misfit::GaussianMisfit;

/// One end of a delayed-acceptance mMALA move: the surrogate's local geometry there (with its
/// output q_s) and the exact output q. The kernel's drift at a state uses the exact residual
/// q − d with the surrogate's J V, so that K(x, ·) is known once q(x) is.
pub(super) struct DaEnd<'a> {
    pub local: &'a LocalGeometry,
    pub q: &'a [f64],
}

/// Stage-1 exponent log α₁(x, y) before clipping: the mMALA ratio of the surrogate corrected by
/// its error at x, q*_x = q_s + q(x) − q_s(x), in the target and in the reverse drift at y
/// (where q(y) is not yet known):
///   Φ(x) − Φ(q*_x(y)) + G(x, y; g_x, g*_x(y)).
pub(super) fn da_mmala_stage1(
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
pub(super) fn da_mmala_stage2(
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

/// The `da-mmala` screen: one mMALA proposal on the surrogate's geometry with the exact
/// residual.
pub(super) struct DaMmala<'a> {
    pub map: LocalMap<'a>,
    pub rho: f64,
}

/// A proposal y with its coordinates c_y.
pub(super) struct DaMmalaProposal {
    m: Vec<f64>,
    c: Array1<f64>,
}

/// A proposal that passed stage 1: the surrogate's geometry at y and log α₁(x, y).
pub(super) struct DaMmalaPassed {
    m: Vec<f64>,
    local: LocalGeometry,
    a1: f64,
}

impl Screen for DaMmala<'_> {
    type State = LocalGeometry;
    type Proposal = DaMmalaProposal;
    type Passed = DaMmalaPassed;

    fn init(&self, chain: &mut ChainState) -> Result<LocalGeometry> {
        self.map.start(chain)
    }

    fn propose(
        &self,
        chain: &mut ChainState,
        x: &LocalGeometry,
        rng: &mut ChaCha8Rng,
    ) -> DaMmalaProposal {
        let prior = self.map.target.exact.prior;
        let draw = prior.draw(rng);
        // drift with the exact map's residual at x (known) and the geometry's J V
        let g_x = x.gradient(&chain.q, self.map.target.exact.misfit.data());
        let (m, c) = self
            .map
            .subspace
            .propose(prior, &chain.m, x, &g_x, self.rho, &draw);
        DaMmalaProposal { m, c }
    }

    fn stage1(
        &self,
        chain: &mut ChainState,
        x: &LocalGeometry,
        y: DaMmalaProposal,
        u: Uniforms,
    ) -> Option<(DaMmalaPassed, f64)> {
        self.map.count(chain);
        let local = self
            .map
            .geometry(&y.m, y.c)
            .map_err(|e| chain.record_failure(e))
            .ok()?;
        let x_end = DaEnd {
            local: x,
            q: &chain.q,
        };
        let a1 = da_mmala_stage1(&self.map.target.exact.misfit, self.rho, &x_end, &local);
        (u.u1.ln() < a1).then_some((DaMmalaPassed { m: y.m, local, a1 }, u.u2))
    }

    fn point<'p>(&self, y: &'p DaMmalaPassed) -> &'p [f64] {
        &y.m
    }

    fn stage2(
        &self,
        chain: &ChainState,
        x: &LocalGeometry,
        y: DaMmalaPassed,
        q_y: Vec<f64>,
        phi_y: f64,
    ) -> (f64, Moved<LocalGeometry>) {
        let misfit = &self.map.target.exact.misfit;
        let x_end = DaEnd {
            local: x,
            q: &chain.q,
        };
        let y_end = DaEnd {
            local: &y.local,
            q: &q_y,
        };
        let a2 = da_mmala_stage2(misfit, self.rho, &x_end, &y_end, y.a1);
        let moved = Moved {
            m: y.m,
            phi: phi_y,
            q_screen: y.local.q.clone(),
            q: q_y,
            coordinates: Some(y.local.c.clone()),
            state: y.local,
        };
        (a2, moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::mmala::{BasisJacobian, Subspace};
    use crate::inference::posterior::Posterior;
    use crate::linalg::eigen::{columnwise, symmetric_eigen};
    use crate::map::DifferentiableMap;
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
