//! The Navier–Stokes solver on the classic lid-driven cavity at Re = 100 against Ghia, Ghia & Shin
//! (1982): the minimum of the horizontal velocity on the vertical centreline is −0.21090 at y = 0.4531.

use std::sync::Arc;

use dino::fem::Mesh;
use dino::models::navier_stokes::{solve_navier_stokes, NavierStokesSettings};
use dino::newton::NewtonSettings;

#[test]
fn lid_driven_cavity_matches_ghia_at_re_100() {
    let mesh = Mesh::unit_square(64);
    let settings = NavierStokesSettings {
        reynolds: 100.0,
        // lid u = 1 on y = 1 (corners excluded), no-slip elsewhere
        boundary_velocity: Arc::new(|x, y| {
            if y > 1.0 - 1e-12 && x > 1e-12 && x < 1.0 - 1e-12 {
                [1.0, 0.0]
            } else {
                [0.0, 0.0]
            }
        }),
        newton: NewtonSettings::default(),
    };
    let flow = solve_navier_stokes(&mesh, &settings).unwrap();
    let (y_min, u_min) = (1..1000)
        .map(|k| {
            let y = k as f64 / 1000.0;
            (y, flow.velocity_at(&mesh, 0.5, y).unwrap()[0])
        })
        .fold(
            (0.0, f64::INFINITY),
            |best, (y, u)| if u < best.1 { (y, u) } else { best },
        );
    let rel = (u_min - (-0.21090)) / 0.21090;
    assert!(
        rel.abs() < 0.02,
        "u_min = {u_min} at y = {y_min} (Ghia: −0.21090 at 0.4531); residuals {:?}",
        flow.residual_norms
    );
    assert!(
        (y_min - 0.4531).abs() < 0.03,
        "minimum at y = {y_min}, Ghia 0.4531"
    );
    // mass conservation: the net flux through the centreline vanishes
    let flux: f64 = (0..1000)
        .map(|k| {
            flow.velocity_at(&mesh, (k as f64 + 0.5) / 1000.0, 0.5)
                .unwrap()[1]
                / 1000.0
        })
        .sum();
    assert!(flux.abs() < 1e-3, "net flux {flux}");
    eprintln!(
        "u_min = {u_min:.5} at y = {y_min:.3}; Newton residuals {:?}",
        flow.residual_norms
    );
}
