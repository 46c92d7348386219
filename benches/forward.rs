//! Forward-model costs at n = 64, 128, 256 (d_M = 4225, 16641, 66049):
//! `forward_solve` (assembly + numeric factorization + solve + observation),
//! `full_jacobian` (all 50 rows on the kept factorization: one 50-column solve + adjoint assembly),
//! `jacobian_action` (one J v), `prior_sample` (one draw from the BiLaplacian prior).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use dino::problem::Problem;
use dino::rng::{stream, Purpose};
use std::hint::black_box;
use std::time::Duration;

const SIZES: [i64; 3] = [64, 128, 256];

fn problem(n: i64) -> Problem {
    Problem::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/problems/poisson.toml"
    ))
    .unwrap()
    .with_mesh(n)
    .unwrap()
}

fn forward(c: &mut Criterion) {
    let mut group = c.benchmark_group("poisson");
    group
        .measurement_time(Duration::from_secs(4))
        .sample_size(20);
    for n in SIZES {
        let problem = problem(n);
        let model = problem.model().unwrap();
        let prior = problem.prior().unwrap();
        let m = prior.sample(&mut stream(1, Purpose::PriorSample, 0));
        let v = prior.sample(&mut stream(2, Purpose::PriorSample, 0));
        group.bench_with_input(BenchmarkId::new("forward_solve", n), &n, |b, _| {
            b.iter(|| black_box(model.solve_pde(black_box(&m)).unwrap().output()[0]))
        });
        let lin = model.solve_pde(&m).unwrap();
        group.bench_with_input(BenchmarkId::new("full_jacobian", n), &n, |b, _| {
            b.iter(|| black_box(lin.jacobian()))
        });
        group.bench_with_input(BenchmarkId::new("jacobian_action", n), &n, |b, _| {
            b.iter(|| black_box(lin.jvp(&v)))
        });
        group.bench_with_input(BenchmarkId::new("prior_sample", n), &n, |b, _| {
            let mut rng = stream(3, Purpose::PriorSample, 0);
            b.iter(|| black_box(prior.sample(&mut rng)))
        });
    }
    group.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);
