//! [`KernelKind`] as a factory: the parts a kernel needs (the mMALA / HMC subspace, the
//! two-level kernels' affine correction, the Jacobian products, the HMC mass matrix) and the
//! kernel object itself, and the chains' starting states.

use super::chain::ChainKernel;
use super::da_mmala::DaMmala;
use super::delayed::DelayedAcceptance;
use super::hamiltonian::Hmc;
use super::mala::Mala;
use super::manifold::{LocalMap, Mmala};
use super::pcn::{GpcnScreen, Pcn, PcnProposal, Reference};
use super::reference::LaplaceTerms;
use super::{ChainState, KernelKind, McmcSettings, Target};
use crate::error::Result;
use crate::inference::hmc::{HmcSettings, SubspaceHmc};
use crate::inference::mmala::{AffineCorrection, BasisJacobian, LocalGeometry, Subspace};
use crate::inference::posterior::Posterior;
use crate::misfit::Misfit;
use crate::rng::{stream, Purpose};

/// The network part g of a surrogate that carries an affine part (an anchored DIPNet,
/// q_s = a + A m + g(m)) as a posterior of its own: the two-level kernels' affine correction
/// towards the PDE absorbs that part, so their coarse model q_C is built from g alone; it is
/// the same q_C, and g keeps its reduced fast paths. The same for a surrogate-only `hmc` chain
/// on such a surrogate: HMC runs on g plus the affine part as a fixed correction.
fn network_part<'a>(post: &Posterior<'a>) -> Result<Option<Posterior<'a>>> {
    post.map
        .affine_free_part()
        .map(|g| Posterior::new(g, post.prior, post.misfit.clone()))
        .transpose()
}

/// Builds the kernel of `settings.kernel` on `target` and hands it to `run` (with the target
/// the kernel runs on: the surrogate replaced by its network part where that applies).
pub(super) fn with_kernel<T>(
    target: &Target<'_>,
    settings: &McmcSettings,
    run: impl FnOnce(&Target<'_>, &dyn ChainKernel) -> Result<T>,
) -> Result<T> {
    let kind = settings.kernel;
    let network_screen = match (kind, target.screen) {
        (KernelKind::DaSubchain | KernelKind::DaHmc, Some(s)) => network_part(s)?,
        _ => None,
    };
    let own_network = match (kind, target.screen) {
        (KernelKind::Hmc, None) => network_part(target.exact)?,
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
    let at_mean = |s| AffineCorrection::at(target.exact, s, &subspace, &target.laplace.mean);
    let correction = match (kind, target.screen, &own_network) {
        (KernelKind::DaSubchain | KernelKind::DaHmc, Some(s), _) => Some(at_mean(s)?),
        (KernelKind::Hmc, None, Some(g)) => Some(at_mean(g)?),
        _ => None,
    };
    let parts = Parts {
        target,
        settings,
        subspace: &subspace,
        correction: correction.as_ref(),
        own_network: own_network.as_ref(),
        rho: (1.0 - settings.step * settings.step).sqrt(),
    };
    let hmc = match kind.is_hmc() {
        true => Some(parts.hmc()?),
        false => None,
    };
    let jacobian = parts.jacobian();
    let kernel = parts.kernel(jacobian.as_ref(), hmc.as_ref());
    run(target, kernel.as_ref())
}

/// What the kernels are built from.
struct Parts<'a> {
    target: &'a Target<'a>,
    settings: &'a McmcSettings,
    subspace: &'a Subspace,
    correction: Option<&'a AffineCorrection>,
    own_network: Option<&'a Posterior<'a>>,
    rho: f64,
}

impl<'a> Parts<'a> {
    /// J V of the map the mMALA kernels' geometry comes from: the exact map (`mmala`), the
    /// surrogate (`da-mmala`) or the corrected coarse map (`da-subchain`).
    fn jacobian(&self) -> Option<BasisJacobian> {
        let kind = self.settings.kernel;
        match (kind.is_mmala(), kind.is_delayed(), self.target.screen) {
            (true, true, Some(s)) => {
                let jac = BasisJacobian::new(s, self.subspace);
                Some(match self.correction {
                    Some(k) => jac.with_correction(k.clone()),
                    None => jac,
                })
            }
            (true, _, _) => Some(BasisJacobian::new(self.target.exact, self.subspace)),
            _ => None,
        }
    }

    /// Subspace HMC on the corrected surrogate (`da-hmc`) or on the chain's own map (`hmc`),
    /// split into network and affine part where it has one, with the Gauss–Newton Hessian of
    /// that map at the Laplace mean as its mass matrix.
    fn hmc(&self) -> Result<SubspaceHmc<'a>> {
        let (target, subspace) = (self.target, self.subspace);
        let (post, jac) = match (target.screen.or(self.own_network), self.correction) {
            (Some(s), Some(k)) => (
                s,
                BasisJacobian::new(s, subspace).with_correction(k.clone()),
            ),
            _ => (target.exact, BasisJacobian::new(target.exact, subspace)),
        };
        let centre = &target.laplace.mean;
        let c = subspace.coordinates(target.exact.prior, centre);
        let metric = LocalGeometry::at(post, &jac, subspace, centre, c)?;
        let hmc_settings = HmcSettings {
            leapfrog_steps: self.settings.leapfrog_steps,
            leapfrog_size: self.settings.leapfrog_size,
            transitions: self.settings.subchain,
        };
        SubspaceHmc::new(
            post,
            subspace,
            self.correction,
            metric.hessian_eigen(),
            hmc_settings,
        )
    }

    /// The pCN proposal for a reference Gaussian.
    fn pcn(&self, reference: Reference) -> PcnProposal<'a> {
        PcnProposal {
            target: self.target,
            reference,
            rho: self.rho,
            beta: self.settings.step,
        }
    }

    /// The kernel of `settings.kernel`.
    fn kernel<'k>(
        &'k self,
        jacobian: Option<&'k BasisJacobian>,
        hmc: Option<&'k SubspaceHmc<'a>>,
    ) -> Box<dyn ChainKernel + 'k> {
        let (target, rho) = (self.target, self.rho);
        let exact = target.exact;
        let screen = || {
            target
                .screen
                .expect("checked: delayed acceptance has a surrogate")
        };
        let laplace = || Reference::Laplace(LaplaceTerms::new(target));
        let local_map = |surrogate: bool| LocalMap {
            target,
            post: if surrogate { screen() } else { exact },
            jacobian: jacobian.expect("built for the mMALA kernels"),
            subspace: self.subspace,
            surrogate,
        };
        let hmc = |two_level| Hmc {
            hmc: hmc.expect("built for the HMC kernels"),
            mean: exact.prior.mean(),
            rho,
            two_level,
        };
        match self.settings.kernel {
            KernelKind::Pcn => Box::new(Pcn(self.pcn(Reference::Prior))),
            KernelKind::Gpcn => Box::new(Pcn(self.pcn(laplace()))),
            KernelKind::Mala => Box::new(Mala {
                exact,
                delta: 2.0 * (1.0 - rho) / (1.0 + rho),
            }),
            KernelKind::Da => Box::new(DelayedAcceptance {
                screen: GpcnScreen {
                    proposal: self.pcn(laplace()),
                    surrogate: screen(),
                },
                exact,
            }),
            KernelKind::Mmala => Box::new(Mmala {
                map: local_map(false),
                rho,
                steps: 1,
                two_level: false,
            }),
            KernelKind::DaMmala => Box::new(DelayedAcceptance {
                screen: DaMmala {
                    map: local_map(true),
                    rho,
                },
                exact,
            }),
            KernelKind::DaSubchain => Box::new(DelayedAcceptance {
                screen: Mmala {
                    map: local_map(true),
                    rho,
                    steps: self.settings.subchain,
                    two_level: true,
                },
                exact,
            }),
            KernelKind::Hmc => Box::new(hmc(false)),
            KernelKind::DaHmc => Box::new(DelayedAcceptance {
                screen: hmc(true),
                exact,
            }),
        }
    }
}

/// A new chain c: from an independent draw of the Laplace approximation about `start` (pCN and
/// ∞-MALA: of the prior), with the exact map (and the surrogate's, when there is one)
/// evaluated there.
pub(super) fn new_chain(
    target: &Target<'_>,
    c: usize,
    start: &[f64],
    settings: &McmcSettings,
    fingerprint: &str,
) -> Result<ChainState> {
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
