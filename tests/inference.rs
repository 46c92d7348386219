//! Bayesian inversion: gradient Taylor test, Laplace = exact posterior for a linear map, MCMC
//! kernels (pCN, gpCN, delayed acceptance) against the exact linear–Gaussian posterior, and
//! Newton–CG on the Poisson problem.

mod common;

use common::*;
use dino::inference::diagnostics::effective_sample_size;
use dino::inference::laplace::prior_pointwise_variance;
use dino::inference::mcmc::{moments, run_chains, ChainState, Target};
use dino::inference::{
    map_newton_cg, KernelKind, Laplace, McmcSettings, NewtonCgSettings, Posterior,
};
use dino::map::DifferentiableMap;
use dino::misfit::GaussianMisfit;
use dino::misfit::Misfit;
use dino::models::ElementwiseQuadratic;
use dino::taylor::TaylorTest;
use ndarray::{Array1, Array2};

/// Point evaluations of m at `k` nodes of an 8 × 8 mesh, scaled by `scale`.
fn linear_map(k: usize, scale: f64) -> ElementwiseQuadratic {
    let mut b = Array2::zeros((k, 81));
    for i in 0..k {
        b[[i, (i * 23 + 10) % 81]] = scale;
        b[[i, (i * 23 + 11) % 81]] = 0.5 * scale;
    }
    ElementwiseQuadratic { b, a: 0.0 }
}

/// Exact posterior mean and covariance of the linear–Gaussian problem.
fn exact_posterior(post: &Posterior<'_>, b: &Array2<f64>) -> (Vec<f64>, Array2<f64>) {
    let n = b.ncols();
    let sigma2 = post.misfit.noise().isotropic_variance().unwrap();
    let mut h = Array2::zeros((n, n));
    for j in 0..n {
        let mut e = vec![0.0; n];
        e[j] = 1.0;
        h.column_mut(j)
            .assign(&Array1::from(post.prior.precision_mul(&e)));
    }
    h = h + b.t().dot(b) / sigma2;
    let rhs = Array1::from(post.prior.precision_mul(post.prior.mean()))
        + b.t().dot(&Array1::from(post.misfit.data().to_vec())) / sigma2;
    let hm = faer::Mat::from_fn(n, n, |i, j| 0.5 * (h[[i, j]] + h[[j, i]]));
    let inv = {
        use faer::linalg::solvers::DenseSolveCore;
        hm.llt(faer::Side::Lower).unwrap().inverse()
    };
    let cov = Array2::from_shape_fn((n, n), |(i, j)| inv[(i, j)]);
    (cov.dot(&rhs).to_vec(), cov)
}

fn setup(
    scale: f64,
    noise: f64,
) -> (
    dino::prior::BiLaplacianPrior,
    ElementwiseQuadratic,
    Vec<f64>,
) {
    let problem = poisson(8);
    let prior = problem.prior().unwrap();
    let map = linear_map(6, scale);
    let m_true = prior_sample(&problem, 5);
    let q = map.evaluate(&m_true).unwrap();
    let data: Vec<f64> = q
        .iter()
        .enumerate()
        .map(|(i, v)| v + noise * ((i as f64) * 1.7).sin())
        .collect();
    (prior, map, data)
}

/// The posterior of the linear map with noise standard deviation `noise`.
fn linear_posterior<'a>(
    prior: &'a dino::prior::BiLaplacianPrior,
    map: &'a ElementwiseQuadratic,
    data: Vec<f64>,
    noise: f64,
) -> Posterior<'a> {
    Posterior::new(
        map,
        prior,
        GaussianMisfit::new(data, noise * noise).unwrap(),
    )
    .unwrap()
}

/// Noise-free data q(m_true) of the prior sample `seed`, with σ = 1% of max |q| (a misfit whose
/// minimizer is known to fit the data).
fn exact_data_misfit(
    problem: &dino::problem::Problem,
    model: &dyn DifferentiableMap,
    seed: u64,
) -> GaussianMisfit {
    let q = model.evaluate(&prior_sample(problem, seed)).unwrap();
    let sigma = 0.01 * q.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    GaussianMisfit::new(q, sigma * sigma).unwrap()
}

#[test]
fn posterior_gradient_passes_the_taylor_test() {
    let problem = poisson(16);
    let prior = problem.prior().unwrap();
    let model = problem.model().unwrap();
    let m_true = prior_sample(&problem, 1);
    let data = model.evaluate(&m_true).unwrap();
    let post = Posterior::new(
        model.as_ref(),
        &prior,
        GaussianMisfit::new(data, 1e-4).unwrap(),
    )
    .unwrap();
    let m = prior_sample(&problem, 2);
    let v = prior_sample(&problem, 3);
    let point = post.linearize(&m).unwrap();
    let t = TaylorTest::run_scalar(
        |e| post.cost(&axpy(&m, e, &v)).unwrap().total,
        point.cost.total,
        dot(&point.gradient, &v),
        1e-2,
        6,
    );
    t.assert_second_order("posterior cost gradient", 0.1);
}

#[test]
fn laplace_on_a_linear_map_is_the_exact_gaussian_posterior() {
    let (prior, map, data) = setup(1.0, 0.05);
    let post = linear_posterior(&prior, &map, data, 0.05);
    let result = map_newton_cg(&post, prior.mean(), &NewtonCgSettings::default()).unwrap();
    let (mean, cov) = exact_posterior(&post, &map.b);
    assert!(result.converged);
    assert!(
        result.iterations <= 6,
        "a quadratic problem: inexact (Eisenstat–Walker) Newton steps ({} its)",
        result.iterations
    );
    assert!(
        norm(&axpy(&result.m, -1.0, &mean)) < 1e-6 * norm(&mean),
        "MAP = exact posterior mean"
    );
    let point = post.linearize(&result.m).unwrap();
    let lap = Laplace::at(&post, &point, &result.m, 6, 10, 0).unwrap();
    let var = lap.pointwise_variance(&prior_pointwise_variance(&prior));
    for k in 0..81 {
        assert!(
            (var[k] - cov[[k, k]]).abs() < 1e-8 * cov[[k, k]].abs().max(1e-12),
            "variance at node {k}: {} vs {}",
            var[k],
            cov[[k, k]]
        );
    }
    // sample covariance of Laplace samples along a direction matches
    let dir: Vec<f64> = (0..81).map(|k| ((k * 7 % 11) as f64 - 5.0) / 5.0).collect();
    let exact = Array1::from(dir.clone()).dot(&cov.dot(&Array1::from(dir.clone())));
    let n = 4000;
    let proj: Vec<f64> = (0..n)
        .map(|i| {
            let s = lap.sample(
                &prior,
                &mut dino::rng::stream(9, dino::rng::Purpose::Chain, i),
            );
            dot(&axpy(&s, -1.0, &result.m), &dir)
        })
        .collect();
    let var_mc = proj.iter().map(|x| x * x).sum::<f64>() / n as f64;
    assert!(
        (var_mc - exact).abs() < 4.0 * exact * (2.0 / n as f64).sqrt(),
        "Laplace samples: {var_mc} vs {exact}"
    );
}

/// Runs chains of `kernel` and checks the mean and variance of the QoIs c_i = v_iᵀ R (m − m_MAP)
/// (exactly N(0, 1/(1+λ_i)) under the linear–Gaussian posterior) within Monte-Carlo error.
/// The chains' coefficients on the two leading Laplace directions have the exact posterior's
/// mean 0 and variance 1/(1 + λ_i) (a linear–Gaussian problem) within 4 Monte-Carlo errors.
fn assert_gaussian_coefficients(chains: &[ChainState], lap: &Laplace, kernel: KernelKind) {
    for i in 0..2 {
        let (mean, var, ess) = qoi_moments(chains, i);
        let exact = 1.0 / (1.0 + lap.eigenvalues[i]);
        assert!(
            mean.abs() < 4.0 * (exact / ess).sqrt(),
            "{kernel:?} c_{i}: mean {mean} (exact 0, ESS {ess:.0})"
        );
        assert!(
            (var - exact).abs() < 4.0 * exact * (2.0 / ess).sqrt(),
            "{kernel:?} c_{i}: variance {var} vs {exact} (ESS {ess:.0})"
        );
    }
}

fn check_kernel(kernel: KernelKind, step: f64, screen_scale: Option<f64>) {
    let (prior, map, data) = setup(1.0, 0.2);
    let misfit = GaussianMisfit::new(data, 0.2f64.powi(2)).unwrap();
    let post = Posterior::new(&map, &prior, misfit.clone()).unwrap();
    let result = map_newton_cg(&post, prior.mean(), &NewtonCgSettings::default()).unwrap();
    let point = post.linearize(&result.m).unwrap();
    let lap = Laplace::at(&post, &point, &result.m, 6, 10, 0).unwrap();
    let screen_map = screen_scale.map(|s| linear_map(6, s));
    let screen_post = screen_map
        .as_ref()
        .map(|m| Posterior::new(m, &prior, misfit.clone()).unwrap());
    let chains = test_chains(&post, screen_post.as_ref(), &lap, kernel, step, 20_000, 4);
    assert_gaussian_coefficients(&chains, &lap, kernel);
    let (mean, _) = moments(&chains);
    assert!(mean.iter().all(|v| v.is_finite()));
    let accepted: usize = chains.iter().map(|c| c.accepted).sum();
    assert!(accepted > 100, "{kernel:?} accepts proposals");
    if kernel == KernelKind::Mmala {
        // every informed direction lies in the Laplace subspace and the geometry is exact:
        // mMALA is gpCN around the exact posterior and accepts everything
        let proposals: usize = chains.iter().map(|c| c.proposals).sum();
        assert!(
            accepted as f64 > 0.999 * proposals as f64,
            "mMALA accepts {accepted} of {proposals} on a linear–Gaussian problem"
        );
    }
    let (s1, total): (usize, usize) = chains
        .iter()
        .fold((0, 0), |a, c| (a.0 + c.stage1_accepted, a.1 + c.proposals));
    if kernel == KernelKind::Da {
        let exact_evals: usize = chains.iter().map(|c| c.exact_evaluations).sum();
        assert!(
            exact_evals < total,
            "stage 1 screens out proposals ({s1} of {total} reach stage 2)"
        );
    }
    if matches!(kernel, KernelKind::DaSubchain | KernelKind::DaHmc) {
        // the exact and the screening maps are linear, so the affine correction at the centre
        // makes the coarse posterior exact: every sub-chain that moved passes the PDE check
        assert_eq!(
            accepted, s1,
            "the corrected linear screen is exact ({accepted} of {s1} accepted)"
        );
        // five surrogate mMALA steps, or five HMC transitions and a complement move per proposal
        let per_proposal = if kernel == KernelKind::DaHmc { 6 } else { 5 };
        let steps: usize = chains.iter().map(|c| c.subchain_steps).sum();
        assert_eq!(steps, per_proposal * total, "surrogate steps per proposal");
    }
    if kernel == KernelKind::Hmc {
        // Gaussian target, exact Gauss–Newton mass matrix: the leapfrog nearly conserves H
        let (moves, tried): (usize, usize) = chains.iter().fold((0, 0), |a, c| {
            (a.0 + c.subchain_accepted, a.1 + c.subchain_steps)
        });
        assert!(
            moves as f64 > 0.9 * tried as f64,
            "HMC accepts {moves} of {tried} transitions on a linear–Gaussian problem"
        );
    }
    if kernel == KernelKind::DaMmala {
        // stage 1 is the exact mMALA of the (Gaussian) corrected screen and accepts nearly
        // everything; stage 2 must reject what the 15% error makes wrong
        assert!(
            accepted < s1,
            "stage 2 corrects the screen ({accepted} of {s1} accepted)"
        );
    }
}

#[test]
fn pcn_reproduces_the_linear_gaussian_posterior() {
    check_kernel(KernelKind::Pcn, 0.3, None);
}

#[test]
fn infinity_mala_reproduces_the_linear_gaussian_posterior() {
    check_kernel(KernelKind::Mala, 0.05, None);
}

#[test]
fn gpcn_reproduces_the_linear_gaussian_posterior() {
    check_kernel(KernelKind::Gpcn, 0.8, None);
}

#[test]
fn delayed_acceptance_targets_the_exact_posterior_not_the_screening_surrogate() {
    // the screen is 15% off: a chain on it alone would have the wrong variance
    check_kernel(KernelKind::Da, 0.8, Some(1.15));
}

#[test]
fn delayed_acceptance_of_subchains_targets_the_exact_posterior() {
    check_kernel(KernelKind::DaSubchain, 0.5, Some(1.15));
}

#[test]
fn mmala_reproduces_the_linear_gaussian_posterior_accepting_everything() {
    check_kernel(KernelKind::Mmala, 0.8, None);
}

#[test]
fn delayed_acceptance_mmala_targets_the_exact_posterior() {
    check_kernel(KernelKind::DaMmala, 0.8, Some(1.15));
}

#[test]
fn subspace_hmc_reproduces_the_linear_gaussian_posterior() {
    check_kernel(KernelKind::Hmc, 0.5, None);
}

#[test]
fn delayed_acceptance_of_hmc_moves_targets_the_exact_posterior() {
    check_kernel(KernelKind::DaHmc, 0.5, Some(1.15));
}

/// U(c) = Φ(m̄ + V c + m⊥) + ½‖c‖² of the HMC kernels and its gradient: Taylor test (slope 2)
/// on the reduced fast path of the shipped DIPNet, with and without the affine correction
/// towards the PDE at a centre, and on the PDE (the generic path: Vᵀ Jᵀ w by an adjoint
/// solve); the state's output equals the map's own (corrected) output at the start point.
#[test]
fn hmc_potential_gradient_passes_the_taylor_test_on_the_surrogate_fast_path() {
    use dino::inference::hmc::{HmcSettings, SubspaceHmc};
    use dino::inference::mmala::{AffineCorrection, BasisJacobian, LocalGeometry, Subspace};
    let (problem, surrogate) = shipped_surrogate();
    let prior = problem.prior().unwrap();
    let pde = problem.model().unwrap();
    let misfit = exact_data_misfit(&problem, pde.as_ref(), 4);
    let post = Posterior::new(&surrogate.net, &prior, misfit.clone()).unwrap();
    let pde_post = Posterior::new(pde.as_ref(), &prior, misfit.clone()).unwrap();
    let n = prior.dim();
    let subspace = Subspace::new(
        &prior,
        Array2::from_shape_fn((n, 4), |(i, j)| ((i * 3 + j * 11) as f64 * 0.17).sin()),
    );
    let centre = prior_sample(&problem, 7);
    let correction = AffineCorrection::at(&pde_post, &post, &subspace, &centre).unwrap();
    let m = prior_sample(&problem, 3);
    let settings = HmcSettings {
        leapfrog_steps: 4,
        leapfrog_size: 0.2,
        transitions: 1,
    };
    for (post, corrected) in [(&post, false), (&post, true), (&pde_post, false)] {
        let mut jac = BasisJacobian::new(post, &subspace);
        if corrected {
            jac = jac.with_correction(correction.clone());
        }
        let local =
            LocalGeometry::at(post, &jac, &subspace, &m, subspace.coordinates(&prior, &m)).unwrap();
        let hmc = SubspaceHmc::new(
            post,
            &subspace,
            corrected.then_some(&correction),
            local.hessian_eigen(),
            settings,
        )
        .unwrap();
        let x = hmc.start(&m).unwrap();
        // the fast path's output is the map's (corrected) output at m
        let gap =
            x.q.iter()
                .zip(&local.q)
                .fold(0.0f64, |a, (p, q)| a.max((p - q).abs()));
        assert!(gap < 1e-9 * misfit.data().iter().fold(0.0f64, |a, v| a.max(v.abs())));
        let (u0, g) = hmc.potential_and_gradient(&x, x.c.clone()).unwrap();
        let delta = Array1::from(vec![0.5, -0.3, 0.8, 0.2]);
        let u = |e: f64| {
            hmc.potential_and_gradient(&x, &x.c + &(e * &delta))
                .unwrap()
                .0
        };
        TaylorTest::run_scalar(u, u0, g.dot(&delta), 1e-2, 6).assert_second_order(
            &format!(
                "HMC potential (corrected: {corrected}, PDE: {})",
                post.map.input_encoder().is_none()
            ),
            0.1,
        );
    }
}

/// Two chains of `kernel` (20 000-step budget typical) started at the Laplace mean, 500 burn-in.
fn test_chains(
    post: &Posterior<'_>,
    screen: Option<&Posterior<'_>>,
    lap: &Laplace,
    kernel: KernelKind,
    step: f64,
    samples: usize,
    seed: u64,
) -> Vec<ChainState> {
    let target = Target {
        exact: post,
        screen,
        laplace: lap,
        subspace: None,
    };
    let settings = McmcSettings {
        kernel,
        step,
        samples,
        burn_in: 500,
        chains: 2,
        seed,
        qoi_directions: 2,
        checkpoint_every: 1_000_000,
        subchain: 5,
        leapfrog_steps: 6,
        leapfrog_size: 0.3,
        sample_every: 0,
    };
    run_chains(
        &target,
        &lap.mean,
        &settings,
        None,
        "test",
        &indicatif::ProgressBar::hidden(),
    )
    .unwrap()
}

/// Mean, variance and ESS (summed over chains) of the QoI c_i.
fn qoi_moments(chains: &[ChainState], i: usize) -> (f64, f64, f64) {
    let trace: Vec<f64> = chains
        .iter()
        .flat_map(|c| c.qoi.iter().map(|q| q[i + 1]))
        .collect();
    let ess: f64 = chains
        .iter()
        .map(|c| effective_sample_size(&c.qoi.iter().map(|q| q[i + 1]).collect::<Vec<_>>()))
        .sum();
    let n = trace.len() as f64;
    let mean = trace.iter().sum::<f64>() / n;
    let var = trace.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var, ess)
}

/// Mean, variance and ESS of c_0 and c_1 over the chains of `kernel` on `post`.
fn chain_moments(
    post: &Posterior<'_>,
    screen: Option<&Posterior<'_>>,
    lap: &Laplace,
    kernel: KernelKind,
    step: f64,
    samples: usize,
) -> Vec<(f64, f64, f64)> {
    let chains = test_chains(post, screen, lap, kernel, step, samples, 9);
    (0..2).map(|i| qoi_moments(&chains, i)).collect()
}

#[test]
fn mmala_with_position_dependent_geometry_agrees_with_gpcn_on_a_nonlinear_posterior() {
    // the local Hessian changes along the chain, so the proposal's log-determinant and
    // reverse density matter (dropping either biases the variance)
    let (prior, linear, data) = setup(1.0, 0.2);
    let map = ElementwiseQuadratic { a: 0.3, ..linear };
    let post = Posterior::new(
        &map,
        &prior,
        GaussianMisfit::new(data, 0.2f64.powi(2)).unwrap(),
    )
    .unwrap();
    let result = map_newton_cg(&post, prior.mean(), &NewtonCgSettings::default()).unwrap();
    let point = post.linearize(&result.m).unwrap();
    let lap = Laplace::at(&post, &point, &result.m, 6, 10, 0).unwrap();
    // delayed acceptance screens with a map of two thirds of the curvature: nonlinear, so that
    // stage 1 rejects and stage 2's α₁(y, x)/α₁(x, y) matters
    let (_, screen_linear, _) = setup(1.0, 0.2);
    let screen_map = ElementwiseQuadratic {
        a: 0.2,
        ..screen_linear.clone()
    };
    let screen = Posterior::new(&screen_map, &prior, post.misfit.clone()).unwrap();
    let reference = chain_moments(&post, None, &lap, KernelKind::Gpcn, 0.6, 40_000);
    let mmala = chain_moments(&post, None, &lap, KernelKind::Mmala, 0.8, 20_000);
    let da_mmala = chain_moments(&post, Some(&screen), &lap, KernelKind::DaMmala, 0.8, 20_000);
    // sub-chains on a *linear* screen: corrected at the MAP it is the exact map's linearization there,
    // so the coarse posterior is the Laplace approximation and only stage 2 puts the
    // non-Gaussian shape back
    let linear_screen = Posterior::new(&screen_linear, &prior, post.misfit.clone()).unwrap();
    let subchain = test_chains(
        &post,
        Some(&linear_screen),
        &lap,
        KernelKind::DaSubchain,
        0.5,
        8_000,
        9,
    );
    let (s1, accepted) = subchain
        .iter()
        .fold((0, 0), |a, c| (a.0 + c.stage1_accepted, a.1 + c.accepted));
    assert!(
        accepted < s1 && accepted > s1 / 4,
        "stage 2 corrects the Laplace-like sub-chains, not all accepted ({accepted} of {s1})"
    );
    let da_subchain: Vec<_> = (0..2).map(|i| qoi_moments(&subchain, i)).collect();
    // HMC moves on the same Laplace-like coarse posterior, and HMC on the exact posterior
    let hmc_moves = test_chains(
        &post,
        Some(&linear_screen),
        &lap,
        KernelKind::DaHmc,
        0.5,
        8_000,
        9,
    );
    let (s1, accepted) = hmc_moves
        .iter()
        .fold((0, 0), |a, c| (a.0 + c.stage1_accepted, a.1 + c.accepted));
    assert!(
        accepted < s1 && accepted > s1 / 10,
        "stage 2 corrects the Laplace-like HMC moves, not all accepted ({accepted} of {s1})"
    );
    let da_hmc: Vec<_> = (0..2).map(|i| qoi_moments(&hmc_moves, i)).collect();
    let hmc = chain_moments(&post, None, &lap, KernelKind::Hmc, 0.5, 8_000);
    for (i, (name, (m_m, v_m, e_m))) in [
        ("mMALA", mmala[0]),
        ("mMALA", mmala[1]),
        ("DA-mMALA", da_mmala[0]),
        ("DA-mMALA", da_mmala[1]),
        ("DA-subchain", da_subchain[0]),
        ("DA-subchain", da_subchain[1]),
        ("DA-HMC", da_hmc[0]),
        ("DA-HMC", da_hmc[1]),
        ("HMC", hmc[0]),
        ("HMC", hmc[1]),
    ]
    .into_iter()
    .enumerate()
    {
        let i = i % 2;
        let (m_r, v_r, e_r) = reference[i];
        let mean_err = (v_r / e_r + v_m / e_m).sqrt();
        assert!(
            (m_r - m_m).abs() < 4.0 * mean_err,
            "c_{i}: {name} mean {m_m} vs gpCN {m_r} (ESS {e_m:.0} / {e_r:.0})"
        );
        let var_err = (2.0 * v_r * v_r / e_r + 2.0 * v_m * v_m / e_m).sqrt();
        assert!(
            (v_r - v_m).abs() < 4.0 * var_err,
            "c_{i}: {name} variance {v_m} vs gpCN {v_r} (ESS {e_m:.0} / {e_r:.0})"
        );
    }
    // the geometry makes mMALA mix faster than gpCN per step on this posterior
    assert!(
        mmala[0].2 / 20_000.0 > reference[0].2 / 40_000.0,
        "ESS per step: mMALA {} vs gpCN {}",
        mmala[0].2 / 20_000.0,
        reference[0].2 / 40_000.0
    );
}

#[test]
fn newton_cg_converges_fast_near_the_map_on_poisson() {
    let problem = poisson(32);
    let prior = problem.prior().unwrap();
    let model = problem.model().unwrap();
    let post = Posterior::new(
        model.as_ref(),
        &prior,
        exact_data_misfit(&problem, model.as_ref(), 11),
    )
    .unwrap();
    let result = map_newton_cg(&post, prior.mean(), &NewtonCgSettings::default()).unwrap();
    let g: Vec<f64> = result.history.iter().map(|r| r.gradient_norm).collect();
    eprintln!("‖g‖_C history: {g:?}");
    assert!(result.converged && result.iterations <= 12, "{g:?}");
    let last = g.len() - 1;
    assert!(g[last] <= 1e-6 * g[0]);
    // superlinear near the MAP: with the Eisenstat–Walker forcing η_k = √(‖g_k‖/‖g_0‖) the
    // local order is 1.5 (quadratic with exact CG solves); the last step contracts by > 100×
    assert!(g[last] / g[last - 1] < 1e-2, "{g:?}");
}

/// problems/poisson.toml and the shipped DIPNet trained for it.
fn shipped_surrogate() -> (dino::problem::Problem, dino::nn::Surrogate) {
    let problem = dino::problem::Problem::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/problems/poisson.toml"
    ))
    .unwrap();
    let surrogate = dino::nn::Surrogate::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/surrogates/poisson-dipnet"
    )))
    .unwrap();
    (problem, surrogate)
}

/// J V of the shipped DIPNet through its encoder, J_r (Eᵀ V), equals its full Jacobian times V.
#[test]
fn surrogate_jacobian_on_a_subspace_uses_the_encoder_exactly() {
    use dino::inference::mmala::{BasisJacobian, Subspace};
    let (problem, surrogate) = shipped_surrogate();
    let prior = problem.prior().unwrap();
    let data = vec![0.0; surrogate.net.output_dim()];
    let post = Posterior::new(
        &surrogate.net,
        &prior,
        GaussianMisfit::new(data, 1.0).unwrap(),
    )
    .unwrap();
    let n = prior.dim();
    let subspace = Subspace::new(
        &prior,
        Array2::from_shape_fn((n, 5), |(i, j)| ((i * 3 + j * 11) as f64 * 0.17).sin()),
    );
    let m = prior_sample(&problem, 3);
    let lin = surrogate.net.linearize(&m).unwrap();
    let through_encoder = BasisJacobian::new(&post, &subspace).apply(lin.as_ref(), &subspace);
    let full = lin.jacobian().dot(&subspace.basis);
    let err = (&through_encoder - &full)
        .iter()
        .fold(0.0f64, |a, v| a.max(v.abs()));
    let scale = full.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    assert!(
        err < 1e-10 * scale,
        "J V through the encoder: {err} vs scale {scale}"
    );
}

#[test]
fn shipped_surrogate_map_agrees_with_the_pde_map() {
    let (problem, surrogate) = shipped_surrogate();
    let dir = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/surrogates/poisson-dipnet"
    ));
    surrogate.check_problem(&problem, &dir).unwrap();
    let prior = problem.prior().unwrap();
    let pde = problem.model().unwrap();
    let m_true = prior.sample(&mut dino::rng::stream(
        0,
        dino::rng::Purpose::PriorSample,
        1 << 40,
    ));
    let (data, sigma) = dino::inference::synthetic_data(pde.as_ref(), &m_true, 0.01, 0).unwrap();
    let misfit = GaussianMisfit::new(data, sigma * sigma).unwrap();
    let post_pde = Posterior::new(pde.as_ref(), &prior, misfit.clone()).unwrap();
    let post_s = Posterior::new(&surrogate.net, &prior, misfit).unwrap();
    let settings = NewtonCgSettings::default();
    let map_pde = map_newton_cg(&post_pde, prior.mean(), &settings).unwrap();
    let map_s = map_newton_cg(&post_s, prior.mean(), &settings).unwrap();
    let rel = norm(&axpy(&map_s.m, -1.0, &map_pde.m)) / norm(&map_pde.m);
    eprintln!("surrogate vs PDE MAP: relative difference {rel:.3}");
    assert!(map_pde.converged && map_s.converged);
    assert!(rel < 0.25, "MAP relative difference {rel}");
    // the surrogate MAP is a good start for the PDE: its posterior cost is close to the optimum
    let c = post_pde.cost(&map_s.m).unwrap().total;
    assert!(
        c < 1.5 * map_pde.cost.total,
        "PDE cost at the surrogate MAP {c} vs {}",
        map_pde.cost.total
    );
    // warm-started there, PDE Newton–CG reaches the same optimum
    let refined = map_newton_cg(&post_pde, &map_s.m, &settings).unwrap();
    assert!(
        (refined.cost.total - map_pde.cost.total).abs() < 1e-6 * map_pde.cost.total,
        "{} vs {}",
        refined.cost.total,
        map_pde.cost.total
    );
}

/// L-BFGS (argmin) finds the same MAP point as Newton–CG: exactly on the linear problem, to the
/// optimizer tolerance on Poisson.
#[test]
fn lbfgs_map_agrees_with_newton_cg() {
    let (prior, map, data) = setup(1.0, 0.05);
    let post = linear_posterior(&prior, &map, data, 0.05);
    let (mean, _) = exact_posterior(&post, &map.b);
    let lbfgs = dino::inference::lbfgs::map_lbfgs(&post, prior.mean(), 500, 1e-10).unwrap();
    assert!(lbfgs.converged, "{} iterations", lbfgs.iterations);
    let rel = norm(&axpy(&lbfgs.m, -1.0, &mean)) / norm(&mean);
    assert!(rel < 1e-6, "L-BFGS MAP vs exact mean: {rel}");

    let problem = poisson(16);
    let prior = problem.prior().unwrap();
    let model = problem.model().unwrap();
    let post = Posterior::new(
        model.as_ref(),
        &prior,
        exact_data_misfit(&problem, model.as_ref(), 3),
    )
    .unwrap();
    let newton = map_newton_cg(&post, prior.mean(), &NewtonCgSettings::default()).unwrap();
    let lbfgs = dino::inference::lbfgs::map_lbfgs(&post, prior.mean(), 500, 1e-7).unwrap();
    let rel = norm(&axpy(&lbfgs.m, -1.0, &newton.m)) / norm(&newton.m);
    eprintln!("Poisson 16²: L-BFGS {} its ({} evaluations), Newton–CG {} its; relative difference {rel:.2e}", lbfgs.iterations, lbfgs.evaluations, newton.iterations);
    assert!(rel < 1e-3, "L-BFGS vs Newton–CG MAP: {rel}");
    assert!((lbfgs.cost.total - newton.cost.total).abs() < 1e-6 * newton.cost.total);
}

/// Where the data residual at the MAP point is large (data that no parameter fits), the
/// Gauss–Newton Hessian is not the Hessian and Newton–CG with it converges only linearly; with
/// the full Hessian after the Gauss–Newton iterations it reaches the same MAP point in fewer
/// iterations, converging superlinearly at the end.
#[test]
fn full_newton_converges_faster_than_gauss_newton_for_large_residuals() {
    let problem = poisson(32);
    let prior = problem.prior().unwrap();
    let model = problem.model().unwrap();
    let q = model.evaluate(&prior_sample(&problem, 12)).unwrap();
    let scale = q.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    // data with a rough, unfittable part of 5% of max |q|
    let data: Vec<f64> = q
        .iter()
        .enumerate()
        .map(|(k, v)| v + 0.05 * scale * if k % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let misfit = GaussianMisfit::new(data, (0.01 * scale).powi(2)).unwrap();
    let post = Posterior::new(model.as_ref(), &prior, misfit).unwrap();
    let run = |gauss_newton_iterations: usize| {
        let settings = NewtonCgSettings {
            gauss_newton_iterations,
            max_iterations: 60,
            rel_tolerance: 1e-8,
            ..NewtonCgSettings::default()
        };
        map_newton_cg(&post, prior.mean(), &settings).unwrap()
    };
    let (gn, newton) = (run(usize::MAX), run(3));
    let history = |r: &dino::inference::MapResult| -> Vec<String> {
        r.history
            .iter()
            .map(|h| format!("{:.2e} {}", h.gradient_norm, h.hessian))
            .collect()
    };
    eprintln!(
        "Gauss–Newton: {:?}\nNewton: {:?}",
        history(&gn),
        history(&newton)
    );
    assert!(newton.converged, "{:?}", history(&newton));
    assert!(newton.history.iter().any(|h| h.hessian == "newton"));
    assert!(gn.history.iter().all(|h| h.hessian == "gauss-newton"));
    assert!(
        newton.iterations < gn.iterations,
        "Newton {} vs Gauss–Newton {} iterations",
        newton.iterations,
        gn.iterations
    );
    let diff = newton
        .m
        .iter()
        .zip(&gn.m)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        .sqrt()
        / newton.m.iter().map(|a| a * a).sum::<f64>().sqrt();
    assert!(diff < 1e-4, "the two MAP points differ by {diff}");
}

/// The two-level kernels build their coarse model q_C = q_s + e₀ + ΔJ (m − m₀) from the network
/// part g of an anchored surrogate q_s = q_a + J_a (m − m_a) + g: the affine correction absorbs
/// the anchor, so both give the same q_C everywhere.
#[test]
fn the_affine_correction_absorbs_a_surrogate_anchor() {
    use dino::inference::mmala::{AffineCorrection, Subspace};
    use dino::nn::{Anchor, AnchoredMap};
    let (problem, surrogate) = shipped_surrogate();
    let prior = problem.prior().unwrap();
    let pde = problem.model().unwrap();
    let misfit = exact_data_misfit(&problem, pde.as_ref(), 4);
    let anchor = Anchor::of(pde.as_ref(), &prior_sample(&problem, 11)).unwrap();
    let anchored = AnchoredMap {
        network: &surrogate.net,
        anchor: &anchor,
    };
    assert!(anchored.affine_free_part().is_some());
    let pde_post = Posterior::new(pde.as_ref(), &prior, misfit.clone()).unwrap();
    let net_post = Posterior::new(&surrogate.net, &prior, misfit.clone()).unwrap();
    let anchored_post = Posterior::new(&anchored, &prior, misfit).unwrap();
    let n = prior.dim();
    let subspace = Subspace::new(
        &prior,
        Array2::from_shape_fn((n, 4), |(i, j)| ((i * 3 + j * 11) as f64 * 0.17).sin()),
    );
    let centre = prior_sample(&problem, 7);
    let for_net = AffineCorrection::at(&pde_post, &net_post, &subspace, &centre).unwrap();
    let for_anchored = AffineCorrection::at(&pde_post, &anchored_post, &subspace, &centre).unwrap();
    for s in [3, 4, 5] {
        let m = prior_sample(&problem, s);
        let a = Array1::from(surrogate.net.evaluate(&m).unwrap()) + for_net.shift_at(&m);
        let b = Array1::from(anchored.evaluate(&m).unwrap()) + for_anchored.shift_at(&m);
        let gap = (&a - &b).mapv(|v| v * v).sum().sqrt() / a.mapv(|v| v * v).sum().sqrt();
        assert!(gap < 1e-10, "sample {s}: relative gap {gap:e}");
    }
}

/// A surrogate-only `hmc` chain on an anchored map q₀ + J₀(m − m₀) + g(m) runs its HMC on g with
/// the affine part as a fixed correction (g's fast path): it must sample the anchored map's
/// posterior. Here g and the anchor are both half the linear map, so the anchored map is the
/// whole one and its linear–Gaussian posterior is known; HMC on g alone would sample another.
#[test]
fn hmc_on_an_anchored_map_samples_the_anchored_posterior() {
    use dino::nn::{Anchor, AnchoredMap};
    let (prior, map, data) = setup(1.0, 0.2);
    let misfit = GaussianMisfit::new(data, 0.2f64.powi(2)).unwrap();
    let post = Posterior::new(&map, &prior, misfit.clone()).unwrap();
    let result = map_newton_cg(&post, prior.mean(), &NewtonCgSettings::default()).unwrap();
    let point = post.linearize(&result.m).unwrap();
    let lap = Laplace::at(&post, &point, &result.m, 6, 10, 0).unwrap();
    let half = linear_map(6, 0.5);
    let anchor = Anchor::of(&half, &prior_sample(&poisson(8), 9)).unwrap();
    let anchored = AnchoredMap {
        network: &half,
        anchor: &anchor,
    };
    let anchored_post = Posterior::new(&anchored, &prior, misfit).unwrap();
    let chains = test_chains(&anchored_post, None, &lap, KernelKind::Hmc, 0.5, 20_000, 4);
    assert_gaussian_coefficients(&chains, &lap, KernelKind::Hmc);
    // the chain's Φ, from g and the correction, is the anchored map's own at its state
    for c in &chains {
        let phi = anchored_post.misfit.cost(&anchored.evaluate(&c.m).unwrap());
        assert!(
            (c.phi - phi).abs() < 1e-9 * phi.max(1.0),
            "{} vs {phi}",
            c.phi
        );
    }
}
