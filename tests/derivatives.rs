//! Taylor tests of every derivative of every PDE model (Poisson, reaction–diffusion, ...), the
//! misfit and the prior. Each check is a function of the problem; one test per (check, problem).

mod common;

use common::*;
use dino::misfit::Misfit;
use dino::misfit::{GaussianMisfit, NoiseCovariance};
use dino::problem::Problem;
use dino::taylor::TaylorTest;
use ndarray::Array2;

const EPS0: f64 = 0.1;
const HALVINGS: usize = 6;
const N: i64 = 24;

fn jacobian_action_is_second_order_accurate(problem: &Problem) {
    let model = problem.model().unwrap();
    let m = prior_sample(problem, 1);
    let v = prior_sample(problem, 2);
    let lin = model.linearize(&m).unwrap();
    let t = TaylorTest::run(
        |e| model.evaluate(&axpy(&m, e, &v)).unwrap(),
        lin.output(),
        &lin.jvp(&v),
        EPS0,
        HALVINGS,
    );
    t.assert_second_order("J v", 0.1);
}

fn adjoint_action_is_the_transpose_and_second_order_accurate(problem: &Problem) {
    let model = problem.model().unwrap();
    let m = prior_sample(problem, 3);
    let v = prior_sample(problem, 4);
    let w: Vec<f64> = (0..model.output_dim())
        .map(|k| ((k * 7 % 11) as f64 - 5.0) / 3.0)
        .collect();
    let lin = model.linearize(&m).unwrap();
    let jtw = lin.vjp(&w);
    // adjoint identity wᵀ(J v) = (Jᵀ w)ᵀ v
    let (a, b) = (dot(&w, &lin.jvp(&v)), dot(&jtw, &v));
    assert!(
        (a - b).abs() <= 1e-10 * a.abs().max(b.abs()),
        "wᵀJv = {a}, (Jᵀw)ᵀv = {b}"
    );
    // Taylor test of φ(m) = wᵀ q(m), whose gradient is Jᵀ w
    let t = TaylorTest::run_scalar(
        |e| dot(&w, &model.evaluate(&axpy(&m, e, &v)).unwrap()),
        dot(&w, lin.output()),
        dot(&jtw, &v),
        EPS0,
        HALVINGS,
    );
    t.assert_second_order("Jᵀ w", 0.1);
}

fn full_jacobian_matches_the_actions(problem: &Problem) {
    let model = problem.model().unwrap();
    let m = prior_sample(problem, 5);
    let v = prior_sample(problem, 6);
    let lin = model.linearize(&m).unwrap();
    let jac = lin.jacobian();
    assert_eq!(jac.shape(), &[model.output_dim(), model.input_dim()]);
    let jv_full: Vec<f64> = jac
        .rows()
        .into_iter()
        .map(|r| dot(r.as_slice().unwrap(), &v))
        .collect();
    let jv = lin.jvp(&v);
    let err = norm(&axpy(&jv_full, -1.0, &jv)) / norm(&jv);
    assert!(err < 1e-10, "relative difference {err}");
    let mut e7 = vec![0.0; model.output_dim()];
    e7[7] = 1.0;
    let row = lin.vjp(&e7);
    let err = norm(&axpy(jac.row(7).as_slice().unwrap(), -1.0, &row)) / norm(&row);
    assert!(err < 1e-12, "relative difference {err}");
}

fn misfit_gradient_is_second_order_accurate(problem: &Problem) {
    let model = problem.model().unwrap();
    let m_true = prior_sample(problem, 7);
    let data: Vec<f64> = model
        .evaluate(&m_true)
        .unwrap()
        .iter()
        .map(|q| q + 0.01)
        .collect();
    let misfit = GaussianMisfit::new(data, 1e-4).unwrap();
    let m = prior_sample(problem, 8);
    let v = prior_sample(problem, 9);
    let lin = model.linearize(&m).unwrap();
    let g = misfit.gradient(lin.as_ref());
    let t = TaylorTest::run_scalar(
        |e| misfit.cost(&model.evaluate(&axpy(&m, e, &v)).unwrap()),
        misfit.cost(lin.output()),
        dot(&g, &v),
        EPS0,
        HALVINGS,
    );
    t.assert_second_order("misfit gradient", 0.1);
}

fn gauss_newton_hessian_is_the_hessian_at_zero_residual(problem: &Problem) {
    // With d = q(m0) the residual vanishes at m0, so H_GN is the exact Hessian there and
    // ‖∇Φ(m0 + εv) − ∇Φ(m0) − ε H_GN v‖ = O(ε²).
    let model = problem.model().unwrap();
    let m = prior_sample(problem, 10);
    let v = prior_sample(problem, 11);
    let lin = model.linearize(&m).unwrap();
    let misfit = GaussianMisfit::new(lin.output().to_vec(), 1e-4).unwrap();
    let g0 = misfit.gradient(lin.as_ref());
    let hv = misfit.gauss_newton_hessian_action(lin.as_ref(), &v);
    let t = TaylorTest::run(
        |e| misfit.gradient(model.linearize(&axpy(&m, e, &v)).unwrap().as_ref()),
        &g0,
        &hv,
        EPS0,
        HALVINGS,
    );
    t.assert_second_order("Gauss–Newton Hessian", 0.1);
    // and it is symmetric: uᵀ H v = vᵀ H u
    let u = prior_sample(problem, 12);
    let hu = misfit.gauss_newton_hessian_action(lin.as_ref(), &u);
    let (a, b) = (dot(&u, &hv), dot(&v, &hu));
    assert!((a - b).abs() <= 1e-10 * a.abs(), "{a} vs {b}");
}

#[test]
fn prior_gradient_is_second_order_accurate() {
    let problem = poisson(N);
    let prior = problem.prior().unwrap();
    let m = prior_sample(&problem, 13);
    let v = prior_sample(&problem, 14);
    let g = prior.gradient(&m);
    let t = TaylorTest::run_scalar(
        |e| prior.cost(&axpy(&m, e, &v)),
        prior.cost(&m),
        dot(&g, &v),
        EPS0,
        HALVINGS,
    );
    t.assert_second_order("prior gradient", 0.1);
}

/// One `#[test]` per (check, problem file).
macro_rules! derivative_tests {
    ($module:ident, $file:expr) => {
        mod $module {
            fn problem() -> dino::problem::Problem {
                dino::problem::Problem::load(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/problems/",
                    $file
                ))
                .unwrap()
                .with_mesh(super::N)
                .unwrap()
            }
            #[test]
            fn jacobian_action() {
                super::jacobian_action_is_second_order_accurate(&problem());
            }
            #[test]
            fn adjoint_action() {
                super::adjoint_action_is_the_transpose_and_second_order_accurate(&problem());
            }
            #[test]
            fn full_jacobian() {
                super::full_jacobian_matches_the_actions(&problem());
            }
            #[test]
            fn misfit_gradient() {
                super::misfit_gradient_is_second_order_accurate(&problem());
            }
            #[test]
            fn gauss_newton_hessian() {
                super::gauss_newton_hessian_is_the_hessian_at_zero_residual(&problem());
            }
        }
    };
}

derivative_tests!(poisson, "poisson.toml");
derivative_tests!(reaction_diffusion, "reaction_diffusion.toml");
derivative_tests!(
    convection_reaction_diffusion,
    "convection_reaction_diffusion.toml"
);

#[test]
fn newton_converges_quadratically_on_reaction_diffusion() {
    let problem = Problem::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/problems/reaction_diffusion.toml"
    ))
    .unwrap();
    let model = problem.model().unwrap();
    let m = prior_sample(&problem, 21);
    let lin = model.solve_pde(&m).unwrap();
    let r = &lin.stats().residual_norms;
    assert!(r.len() >= 3, "residual history {r:?}");
    // quadratic convergence: r_{k+1} ≤ C r_k² over the last steps, with a modest constant
    for k in r.len() - 3..r.len() - 1 {
        assert!(
            r[k + 1] <= 1e3 * r[k] * r[k],
            "not quadratic at step {k}: residual history {r:?}"
        );
    }
    assert!(r[r.len() - 1] < 1e-9 * r[0], "residual history {r:?}");
}

/// The second-order action H_w v = d/dε Jᵀ(m + εv) w (hIPPYlib's incremental forward/adjoint
/// Hessian action): Taylor remainder of Jᵀ w of slope 2, and symmetric in v.
fn second_order_action_is_the_derivative_of_the_adjoint_action(problem: &Problem) {
    let model = problem.model().unwrap();
    let m = prior_sample(problem, 31);
    let (v, v2) = (prior_sample(problem, 32), prior_sample(problem, 33));
    let w: Vec<f64> = (0..model.output_dim())
        .map(|k| ((k * 5 % 9) as f64 - 4.0) / 2.0)
        .collect();
    let lin = model.linearize(&m).unwrap();
    let hv = lin
        .second_order_action(&w, &v)
        .expect("the diffusion models provide second derivatives");
    let t = TaylorTest::run(
        |e| model.linearize(&axpy(&m, e, &v)).unwrap().vjp(&w),
        &lin.vjp(&w),
        &hv,
        EPS0,
        HALVINGS,
    );
    t.assert_second_order("second-order action H_w v", 0.1);
    let hv2 = lin.second_order_action(&w, &v2).unwrap();
    let (a, b) = (dot(&v2, &hv), dot(&v, &hv2));
    assert!(
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()),
        "symmetry: v₂ᵀ H v₁ = {a}, v₁ᵀ H v₂ = {b}"
    );
}

/// The misfit's full Hessian (Gauss–Newton + second-order term) is the derivative of its
/// gradient: Taylor remainder of slope 2 at a point with a large data residual, where the
/// Gauss–Newton Hessian alone is not (its remainder is first order).
fn misfit_hessian_is_the_derivative_of_the_gradient(problem: &Problem) {
    let model = problem.model().unwrap();
    let data: Vec<f64> = model
        .evaluate(&prior_sample(problem, 41))
        .unwrap()
        .iter()
        .map(|q| q + 0.5)
        .collect();
    let misfit = GaussianMisfit::new(data, 1e-2).unwrap();
    let (m, v) = (prior_sample(problem, 42), prior_sample(problem, 43));
    let lin = model.linearize(&m).unwrap();
    let gradient = |x: &[f64]| misfit.gradient(model.linearize(x).unwrap().as_ref());
    let g0 = misfit.gradient(lin.as_ref());
    let full = misfit.hessian_action(lin.as_ref(), &v).unwrap();
    TaylorTest::run(|e| gradient(&axpy(&m, e, &v)), &g0, &full, EPS0, HALVINGS)
        .assert_second_order("misfit Hessian (full)", 0.1);
    let gn = misfit.gauss_newton_hessian_action(lin.as_ref(), &v);
    let slope = TaylorTest::run(|e| gradient(&axpy(&m, e, &v)), &g0, &gn, EPS0, HALVINGS).slope();
    assert!(
        slope < 1.5,
        "the Gauss–Newton Hessian should miss the second-order term here (slope {slope})"
    );
}

fn load_problem(file: &str) -> Problem {
    Problem::load(format!("{}/problems/{file}", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .with_mesh(N)
        .unwrap()
}

#[test]
fn poisson_second_order_action() {
    second_order_action_is_the_derivative_of_the_adjoint_action(&load_problem("poisson.toml"));
}

#[test]
fn reaction_diffusion_second_order_action() {
    second_order_action_is_the_derivative_of_the_adjoint_action(&load_problem(
        "reaction_diffusion.toml",
    ));
}

#[test]
fn poisson_misfit_hessian() {
    misfit_hessian_is_the_derivative_of_the_gradient(&load_problem("poisson.toml"));
}

#[test]
fn reaction_diffusion_misfit_hessian() {
    misfit_hessian_is_the_derivative_of_the_gradient(&load_problem("reaction_diffusion.toml"));
}

/// Per-datum variances σᵢ² spread over two decades, and a correlated full covariance
/// Γᵢⱼ = σ² (exp(−|i − j|/3) + 0.1 δᵢⱼ): the noise models of observed data.
fn diagonal_noise(n: usize) -> NoiseCovariance {
    NoiseCovariance::diagonal(
        (0..n)
            .map(|i| 1e-3 * 10f64.powf(2.0 * i as f64 / n as f64))
            .collect(),
    )
    .unwrap()
}

fn correlated_noise(n: usize) -> NoiseCovariance {
    NoiseCovariance::dense(Array2::from_shape_fn((n, n), |(i, j)| {
        1e-2 * ((-(i as f64 - j as f64).abs() / 3.0).exp() + if i == j { 0.1 } else { 0.0 })
    }))
    .unwrap()
}

/// With a diagonal or full Γ: the gradient Jᵀ Γ⁻¹ (q − d) and the full Hessian action (the
/// fused PDE override of `misfit_hessian_action` included) pass Taylor tests of slope 2, and
/// the Gauss–Newton Hessian Jᵀ Γ⁻¹ J is symmetric.
fn misfit_derivatives_hold_for_noise(problem: &Problem, noise_of: fn(usize) -> NoiseCovariance) {
    let model = problem.model().unwrap();
    let data: Vec<f64> = model
        .evaluate(&prior_sample(problem, 51))
        .unwrap()
        .iter()
        .map(|q| q + 0.3)
        .collect();
    let misfit = GaussianMisfit::with_noise(data.clone(), noise_of(data.len())).unwrap();
    let (m, v, u) = (
        prior_sample(problem, 52),
        prior_sample(problem, 53),
        prior_sample(problem, 54),
    );
    let lin = model.linearize(&m).unwrap();
    let g0 = misfit.gradient(lin.as_ref());
    TaylorTest::run_scalar(
        |e| misfit.cost(&model.evaluate(&axpy(&m, e, &v)).unwrap()),
        misfit.cost(lin.output()),
        dot(&g0, &v),
        EPS0,
        HALVINGS,
    )
    .assert_second_order("misfit gradient", 0.1);
    let gradient = |x: &[f64]| misfit.gradient(model.linearize(x).unwrap().as_ref());
    let full = misfit.hessian_action(lin.as_ref(), &v).unwrap();
    TaylorTest::run(|e| gradient(&axpy(&m, e, &v)), &g0, &full, EPS0, HALVINGS)
        .assert_second_order("misfit Hessian (full)", 0.1);
    let (hv, hu) = (
        misfit.gauss_newton_hessian_action(lin.as_ref(), &v),
        misfit.gauss_newton_hessian_action(lin.as_ref(), &u),
    );
    let (a, b) = (dot(&u, &hv), dot(&v, &hu));
    assert!((a - b).abs() <= 1e-9 * a.abs(), "{a} vs {b}");
}

#[test]
fn reaction_diffusion_misfit_with_per_datum_noise() {
    misfit_derivatives_hold_for_noise(&load_problem("reaction_diffusion.toml"), diagonal_noise);
}

#[test]
fn reaction_diffusion_misfit_with_correlated_noise() {
    misfit_derivatives_hold_for_noise(&load_problem("reaction_diffusion.toml"), correlated_noise);
}

/// A full Γ = σ² I gives the isotropic misfit's cost, gradient and Hessian action.
#[test]
fn full_covariance_sigma_squared_identity_is_the_isotropic_misfit() {
    let problem = load_problem("reaction_diffusion.toml");
    let model = problem.model().unwrap();
    let lin = model.linearize(&prior_sample(&problem, 61)).unwrap();
    let data: Vec<f64> = lin.output().iter().map(|q| q * 1.1 + 0.2).collect();
    let n = data.len();
    let iso = GaussianMisfit::new(data.clone(), 4e-3).unwrap();
    let dense =
        GaussianMisfit::with_noise(data, NoiseCovariance::dense(Array2::eye(n) * 4e-3).unwrap())
            .unwrap();
    let v = prior_sample(&problem, 62);
    let rel = |a: &[f64], b: &[f64]| norm(&axpy(a, -1.0, b)) / norm(b);
    let (ci, cd) = (iso.cost(lin.output()), dense.cost(lin.output()));
    assert!((ci - cd).abs() < 1e-12 * ci, "{ci} vs {cd}");
    assert!(rel(&dense.gradient(lin.as_ref()), &iso.gradient(lin.as_ref())) < 1e-12);
    let (hd, hi) = (
        dense.hessian_action(lin.as_ref(), &v).unwrap(),
        iso.hessian_action(lin.as_ref(), &v).unwrap(),
    );
    assert!(rel(&hd, &hi) < 1e-12);
    // a covariance of the wrong size is refused
    assert!(GaussianMisfit::with_noise(vec![0.0; n + 1], diagonal_noise(n)).is_err());
}
