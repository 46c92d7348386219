//! Helpers shared by the integration tests.
#![allow(dead_code)]

use dino::problem::Problem;
use dino::rng::{stream, Purpose};

/// The shipped Poisson problem on an `n × n` mesh.
pub fn poisson(n: i64) -> Problem {
    Problem::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/problems/poisson.toml"
    ))
    .unwrap()
    .with_mesh(n)
    .unwrap()
}

/// A prior sample of `problem` for seed `seed`.
pub fn prior_sample(problem: &Problem, seed: u64) -> Vec<f64> {
    problem
        .prior()
        .unwrap()
        .sample(&mut stream(seed, Purpose::PriorSample, 0))
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// a + ε b
pub fn axpy(a: &[f64], eps: f64, b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + eps * y).collect()
}
