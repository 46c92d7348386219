//! Manufactured solution for the Poisson model: the L² error of P1 falls as h².
//!
//! u = cos(πx) sin(πy) + y satisfies the Poisson problem's boundary conditions (u = 0 at y = 0,
//! u = 1 at y = 1, ∂u/∂x = 0 at x = 0, 1); with m = x/2 (so κ = e^{x/2}, exactly P1) the source is
//! f = −∇·(κ∇u) = −κ (u_x / 2 + Δu).

use std::f64::consts::PI;
use std::sync::Arc;

use dino::fem::assembly::l2_error;
use dino::fem::{Mesh, Side};
use dino::models::{PdeLinearization, PoissonModel, PoissonSettings};

fn exact(x: f64, y: f64) -> f64 {
    (PI * x).cos() * (PI * y).sin() + y
}

fn source(x: f64, y: f64) -> f64 {
    let kappa = (0.5 * x).exp();
    let ux = -PI * (PI * x).sin() * (PI * y).sin();
    let lap = -2.0 * PI * PI * (PI * x).cos() * (PI * y).sin();
    -kappa * (0.5 * ux + lap)
}

fn error(n: usize) -> f64 {
    let mesh = Mesh::unit_square(n);
    let m: Vec<f64> = mesh.vertices().iter().map(|p| 0.5 * p[0]).collect();
    let settings = PoissonSettings {
        source: Some(Arc::new(source)),
        dirichlet: vec![(Side::Bottom, 0.0), (Side::Top, 1.0)],
        observation_points: vec![[0.5, 0.5]],
    };
    let model = PoissonModel::new(mesh.clone(), &settings).unwrap();
    let lin = model.solve(&m).unwrap();
    l2_error(&mesh, lin.state(), exact)
}

#[test]
fn poisson_l2_error_converges_at_rate_two() {
    let errors: Vec<f64> = [16, 32, 64, 128].iter().map(|&n| error(n)).collect();
    let rates: Vec<f64> = errors.windows(2).map(|w| (w[0] / w[1]).log2()).collect();
    for r in &rates {
        assert!(
            (r - 2.0).abs() < 0.1,
            "L2 errors {errors:?}, rates {rates:?}"
        );
    }
}
