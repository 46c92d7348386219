//! One training epoch in the configuration of `shared/stack.md`: MLP 100 → 6 × 50 softplus → 50,
//! loss = relative L2 + relative full-Jacobian (50 × 100) term, 1024 samples, batch 32, Adam, on
//! the flex CPU backend; and the setting: DIPNet 100-50 with the H1 loss in the metric
//! of the full Jacobian (100 input directions per sample), 4096 samples. (Reference on this machine: JAX 0.10 with vmap(jacfwd) + jit ≈ 0.11 s per
//! epoch; a plain burn implementation ≈ 0.31 s.)

use burn::tensor::Device;
use criterion::{criterion_group, criterion_main, Criterion};
use dino::nn::train::{train, JacobianMetric, MetricDirections, Samples, TrainSettings};
use dino::nn::{Loss, Mlp, MlpShape};
use std::time::Duration;

/// Deterministic synthetic samples: 100 inputs, 50 outputs, a 50 × 100 Jacobian target each.
fn synthetic_samples(n: usize, metric: Option<JacobianMetric>) -> Samples {
    let wave = |k: usize, scale: f32| (k as f32 * 0.618).sin() * scale;
    Samples {
        count: n,
        input: 100,
        output: 50,
        x: (0..n * 100).map(|k| wave(k, 1.0)).collect(),
        q: (0..n * 50).map(|k| wave(k + 7, 1.0) + 2.0).collect(),
        jacobian: Some((0..n * 50 * 100).map(|k| wave(k + 3, 0.1)).collect()),
        metric,
    }
}

fn train_epoch(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    let shape = MlpShape {
        input: 100,
        width: 50,
        depth: 6,
        output: 50,
    };
    // a near-identity metric: the DIPNet H1 loss's 100 shared directions
    let metric = JacobianMetric {
        directions: MetricDirections::Rows {
            d: (0..100 * 100)
                .map(|k| {
                    if k % 101 == 0 {
                        1.0
                    } else {
                        (k as f32 * 0.618).sin() * 0.01
                    }
                })
                .collect(),
            k: 100,
        },
        output_scale: vec![1.0; 50],
    };
    let cases = [
        (
            "mlp_100_6x50_50_h1_1024_samples",
            synthetic_samples(1024, None),
        ),
        (
            "dipnet_100_50_h1_metric_4096_samples",
            synthetic_samples(4096, Some(metric)),
        ),
    ];
    let settings = TrainSettings::adam(1, 32, 1e-3, 0);
    let mut group = c.benchmark_group("train_epoch");
    group
        .measurement_time(Duration::from_secs(15))
        .sample_size(10);
    for (name, samples) in &cases {
        group.bench_function(*name, |b| {
            let mut mlp = Some(Mlp::new(shape, 0, &device));
            b.iter(|| {
                let (trained, _) = train(
                    mlp.take().expect("model"),
                    samples,
                    Loss::H1,
                    &settings,
                    &device,
                )
                .unwrap();
                mlp = Some(trained);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, train_epoch);
criterion_main!(benches);
