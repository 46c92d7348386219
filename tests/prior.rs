//! The BiLaplacian prior: covariance and precision are inverses, and samples have covariance C.

mod common;

use common::*;
use dino::rng::{stream, Purpose};

#[test]
fn covariance_inverts_precision() {
    let problem = poisson(12);
    let prior = problem.prior().unwrap();
    let x: Vec<f64> = (0..prior.dim()).map(|i| (0.3 * i as f64).sin()).collect();
    let y = prior.covariance_mul(&prior.precision_mul(&x));
    assert!(norm(&axpy(&x, -1.0, &y)) < 1e-10 * norm(&x));
}

#[test]
fn sample_covariance_matches_c_along_test_directions() {
    let problem = poisson(16);
    let prior = problem.prior().unwrap();
    let n_samples = 2000;
    let samples: Vec<Vec<f64>> = (0..n_samples)
        .map(|i| prior.sample(&mut stream(42, Purpose::PriorSample, i)))
        .collect();
    let dim = prior.dim();
    // dual test vectors b: smooth, localized and oscillating functionals
    let directions: Vec<Vec<f64>> = vec![
        prior.mass_mul(&vec![1.0; dim]),
        (0..dim)
            .map(|i| if i == dim / 2 { 1.0 } else { 0.0 })
            .collect(),
        prior.mass_mul(&(0..dim).map(|i| (0.4 * i as f64).cos()).collect::<Vec<_>>()),
        (0..dim)
            .map(|i| if i % 17 == 3 { 1.0 } else { -0.2 })
            .collect(),
    ];
    let se = (2.0 / (n_samples as f64 - 1.0)).sqrt();
    for (k, b) in directions.iter().enumerate() {
        let proj: Vec<f64> = samples.iter().map(|m| dot(b, m)).collect();
        let mean = proj.iter().sum::<f64>() / n_samples as f64;
        let var = proj.iter().map(|p| (p - mean).powi(2)).sum::<f64>() / (n_samples as f64 - 1.0);
        let exact = dot(b, &prior.covariance_mul(b));
        let rel = (var - exact) / exact;
        assert!(
            rel.abs() < 4.0 * se,
            "direction {k}: sample variance {var}, bᵀCb {exact}, relative error {rel} (4σ = {})",
            4.0 * se
        );
        // the mean is zero: |mean| within 4 standard errors
        assert!(
            mean.abs() < 4.0 * (exact / n_samples as f64).sqrt(),
            "direction {k}: mean {mean}"
        );
    }
    // a cross-covariance: Cov(aᵀm, bᵀm) = aᵀ C b
    let (a, b) = (&directions[0], &directions[2]);
    let pa: Vec<f64> = samples.iter().map(|m| dot(a, m)).collect();
    let pb: Vec<f64> = samples.iter().map(|m| dot(b, m)).collect();
    let (ma, mb) = (
        pa.iter().sum::<f64>() / n_samples as f64,
        pb.iter().sum::<f64>() / n_samples as f64,
    );
    let cov = pa
        .iter()
        .zip(&pb)
        .map(|(x, y)| (x - ma) * (y - mb))
        .sum::<f64>()
        / (n_samples as f64 - 1.0);
    let exact = dot(a, &prior.covariance_mul(b));
    let scale = (dot(a, &prior.covariance_mul(a)) * dot(b, &prior.covariance_mul(b))).sqrt();
    assert!(
        (cov - exact).abs() < 4.0 * se * scale,
        "cross covariance {cov} vs {exact}"
    );
}
