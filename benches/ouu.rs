//! Optimization under uncertainty on `problems/ouu_semilinear.toml` (64², 49 controls): the cost of
//! Q and ∇_z Q for the N = 64 SAA samples at one control, with the PDE (`pde_cold`: Newton from
//! zero, forward + adjoint per sample, in parallel; `pde_warm`: Newton warm-started at the state
//! of the previous, here identical, control, as in the last optimizer iterations) and with an
//! MR-DINO 100+49 → 2 × 200 → 100 POD modes (`mr_dino`: one batched reduced-space pass; untrained
//! weights and arbitrary bases, the cost does not depend on their values). The ratio is the
//! online speedup per objective evaluation.

use burn::tensor::Device;
use criterion::{criterion_group, criterion_main, Criterion};
use dino::map::ControlledMap;
use dino::nn::{ControlSurrogate, DipNet, InputBasis, Mlp, MlpShape, ReducedCoordinates};
use dino::ouu::ControlQoi;
use dino::problem::Problem;
use dino::rng::{stream, Purpose};
use ndarray::{Array1, Array2};
use std::hint::black_box;

fn ouu(c: &mut Criterion) {
    let problem = Problem::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/problems/ouu_semilinear.toml"
    ))
    .unwrap();
    let pde = problem.control_problem().unwrap();
    let prior = problem.prior().unwrap();
    let samples: Vec<Vec<f64>> = (0..64)
        .map(|i| prior.sample(&mut stream(0, Purpose::OuuSample, i)))
        .collect();
    let z: Vec<f64> = (0..49).map(|k| ((k as f64) * 0.37).sin()).collect();
    let (d_m, n_z, r_m, r_u) = (4225, 49, 100, 100);
    let basis = |rows: usize, cols: usize| {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            ((i * 31 + j * 17) as f64 * 0.1).sin() / (rows as f64).sqrt()
        })
    };
    let mut encoder = Array2::zeros((d_m + n_z, r_m + n_z));
    encoder
        .slice_mut(ndarray::s![..d_m, ..r_m])
        .assign(&basis(d_m, r_m));
    for k in 0..n_z {
        encoder[[d_m + k, r_m + k]] = 1.0;
    }
    let coordinates = ReducedCoordinates {
        input_basis: InputBasis::reduced(encoder.clone(), encoder),
        input_shift: Array1::zeros(d_m + n_z),
        output_basis: basis(d_m, r_u),
        output_shift: Array1::zeros(d_m),
        input_mean: Array1::zeros(r_m + n_z),
        input_std: Array1::ones(r_m + n_z),
        output_mean: Array1::zeros(r_u),
        output_std: Array1::ones(r_u),
    };
    let mlp = Mlp::new(
        MlpShape {
            input: r_m + n_z,
            width: 200,
            depth: 2,
            output: r_u,
        },
        0,
        &Device::flex(),
    );
    let surrogate = ControlSurrogate::new(DipNet::new(&mlp, coordinates), &pde).unwrap();
    assert_eq!(ControlledMap::control_dim(&pde), n_z);
    let mut group = c.benchmark_group("ouu_64_samples");
    group.sample_size(10);
    group.bench_function("pde_cold", |b| {
        b.iter(|| black_box(pde.bind(&samples).unwrap().values_and_gradients(&z)))
    });
    let warm = pde.bind(&samples).unwrap();
    warm.values_and_gradients(&z);
    group.bench_function("pde_warm", |b| {
        b.iter(|| black_box(warm.values_and_gradients(&z)))
    });
    let bound = surrogate.bind(&samples).unwrap();
    group.bench_function("mr_dino", |b| {
        b.iter(|| black_box(bound.values_and_gradients(&z)))
    });
    group.finish();
}

criterion_group!(benches, ouu);
criterion_main!(benches);
