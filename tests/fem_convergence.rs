//! Manufactured solutions: the L² error of P1 falls as h², for the Poisson operator and for the
//! nonlinear reaction–diffusion operator.
//!
//! u = cos(πx) sin(πy) + y satisfies the problems' boundary conditions (u = 0 at y = 0, u = 1 at
//! y = 1, ∂u/∂x = 0 at x = 0, 1); with m = x/2 (κ = e^{x/2}, exactly P1) the source is
//! f = −∇·(κ∇u) + c u³ = −κ (u_x / 2 + Δu) + c u³.

use std::f64::consts::PI;
use std::sync::Arc;

use dino::fem::assembly::l2_error;
use dino::fem::Mesh;
use dino::models::{DiffusionModel, DiffusionSettings, PdeLinearization};
use dino::newton::NewtonSettings;

fn exact(x: f64, y: f64) -> f64 {
    (PI * x).cos() * (PI * y).sin() + y
}

fn source(x: f64, y: f64, c: f64) -> f64 {
    let kappa = (0.5 * x).exp();
    let ux = -PI * (PI * x).sin() * (PI * y).sin();
    let lap = -2.0 * PI * PI * (PI * x).cos() * (PI * y).sin();
    -kappa * (0.5 * ux + lap) + c * exact(x, y).powi(3)
}

fn error(n: usize, reaction: f64) -> (f64, usize) {
    let mesh = Mesh::unit_square(n);
    let m: Vec<f64> = mesh.vertices().iter().map(|p| 0.5 * p[0]).collect();
    let settings = DiffusionSettings {
        name: "manufactured",
        reaction,
        source: Some(Arc::new(move |x, y| source(x, y, reaction))),
        dirichlet: vec![("bottom".into(), 0.0), ("top".into(), 1.0)],
        observation_points: vec![[0.5, 0.5]],
        newton: NewtonSettings::default(),
    };
    let model = DiffusionModel::new(mesh.clone(), &settings).unwrap();
    let lin = model.solve(&m).unwrap();
    (
        l2_error(&mesh, lin.state(), exact),
        lin.stats().newton_iterations,
    )
}

fn assert_rate_two(reaction: f64) {
    let errors: Vec<f64> = [16, 32, 64, 128]
        .iter()
        .map(|&n| error(n, reaction).0)
        .collect();
    let rates: Vec<f64> = errors.windows(2).map(|w| (w[0] / w[1]).log2()).collect();
    for r in &rates {
        assert!(
            (r - 2.0).abs() < 0.1,
            "c = {reaction}: L2 errors {errors:?}, rates {rates:?}"
        );
    }
}

#[test]
fn poisson_l2_error_converges_at_rate_two() {
    assert_rate_two(0.0);
}

#[test]
fn reaction_diffusion_l2_error_converges_at_rate_two() {
    assert_rate_two(5.0);
    assert!(
        error(16, 5.0).1 >= 2,
        "the cubic term makes the problem nonlinear"
    );
}
