//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::process::{Command, Output};

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

/// Runs the `dino` binary.
pub fn dino(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dino"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs `dino` expecting success.
pub fn ok(args: &[&str]) {
    let out = dino(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `dino` expecting failure; returns stderr after checking exit code 2, no panic, and that
/// every string in `mentions` appears in the message.
pub fn fails(args: &[&str], mentions: &[&str]) -> String {
    let out = dino(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "args {args:?}: stderr {stderr}");
    assert!(!stderr.contains("panicked"), "panic on bad input: {stderr}");
    for m in mentions {
        assert!(
            stderr.contains(m),
            "args {args:?}: message should mention {m:?}: {stderr}"
        );
    }
    stderr
}
