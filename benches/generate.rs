//! Training-data throughput: Poisson at n = 64, full Jacobians, 64 samples per iteration written to
//! a temporary folder, with 1 and 2 worker threads (samples/s = 64 / time).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dino::data::{generate, GenerateOptions};
use dino::problem::Problem;
use std::time::Duration;

fn generate_samples(c: &mut Criterion) {
    let problem = Problem::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/problems/poisson.toml"
    ))
    .unwrap();
    let mut group = c.benchmark_group("generate_full_jacobians_poisson_64");
    group
        .measurement_time(Duration::from_secs(10))
        .sample_size(10);
    group.throughput(Throughput::Elements(64));
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        group.bench_with_input(BenchmarkId::new("threads", threads), &threads, |b, _| {
            b.iter(|| {
                let dir = tempfile::tempdir().unwrap();
                let options = GenerateOptions::new(64, 0, dir.path().join("data"));
                pool.install(|| generate(&problem, &options).unwrap())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, generate_samples);
criterion_main!(benches);
