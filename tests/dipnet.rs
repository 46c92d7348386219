//! DIPNet as a differentiable map: trained on Poisson data in active-subspace / POD coordinates,
//! its J v and Jᵀ w pass the same Taylor and adjoint tests as the PDE models, and it approximates
//! the PDE map.

mod common;

use burn::tensor::Device;
use common::*;
use dino::bases::{active_subspace_from_data, pod, EigenSettings};
use dino::data::{generate, load, GenerateOptions};
use dino::nn::train::{train, AdamSettings};
use dino::nn::{DipNet, LossWeights, Mlp, MlpShape, ReducedCoordinates};
use dino::taylor::TaylorTest;
use dino::DifferentiableMap;

fn trained_dipnet(dir: &std::path::Path) -> (DipNet, dino::problem::Problem) {
    let problem = poisson(8);
    let options = GenerateOptions::new(64, 1, dir.join("data"));
    generate(&problem, &options).unwrap();
    let data = load(&[dir.join("data")]).unwrap();
    let prior = problem.prior().unwrap();
    let input = active_subspace_from_data(
        &data,
        &prior,
        0.01,
        EigenSettings {
            rank: 12,
            oversampling: 10,
            seed: 0,
        },
    )
    .unwrap();
    let output = pod(&data, 12).unwrap();
    let coords = ReducedCoordinates::fit(
        input.encoder,
        input.decoder,
        output.decoder,
        &data.m,
        &data.q,
    )
    .unwrap();
    let samples = coords.samples(&data.m, &data.q, data.jacobian.as_ref());
    let device = Device::flex().autodiff();
    let shape = MlpShape {
        input: 12,
        width: 32,
        depth: 3,
        output: 12,
    };
    let settings = AdamSettings {
        epochs: 400,
        batch_size: 16,
        learning_rate: 3e-3,
        seed: 0,
    };
    let (mlp, _) = train(
        Mlp::new(shape, 0, &device),
        &samples,
        LossWeights::H1,
        settings,
        &device,
    );
    (
        DipNet {
            mlp,
            coordinates: coords,
            device,
        },
        problem,
    )
}

#[test]
fn dipnet_derivatives_pass_the_taylor_and_adjoint_tests_and_it_approximates_the_pde() {
    let dir = tempfile::tempdir().unwrap();
    let (net, problem) = trained_dipnet(dir.path());
    let pde = problem.model().unwrap();
    let (m, v) = (prior_sample(&problem, 101), prior_sample(&problem, 102));
    let lin = net.linearize(&m).unwrap();
    // Taylor test (the network runs in f32: ε from 0.5, where the remainder is far above rounding)
    let t = TaylorTest::run(
        |e| net.evaluate(&axpy(&m, e, &v)).unwrap(),
        lin.output(),
        &lin.jvp(&v),
        0.5,
        5,
    );
    t.assert_second_order("DIPNet J v", 0.15);
    let w: Vec<f64> = (0..50).map(|k| (k as f64 * 0.37).sin()).collect();
    let (a, b) = (dot(&w, &lin.jvp(&v)), dot(&lin.vjp(&w), &v));
    assert!(
        (a - b).abs() <= 1e-10 * a.abs().max(b.abs()),
        "adjoint identity: {a} vs {b}"
    );
    let jac = lin.jacobian();
    let jv: Vec<f64> = jac
        .rows()
        .into_iter()
        .map(|r| dot(r.as_slice().unwrap(), &v))
        .collect();
    assert!(norm(&axpy(&jv, -1.0, &lin.jvp(&v))) < 1e-10 * norm(&jv));
    // accuracy against the PDE on fresh prior samples
    // and against the trivial predictor q̄ (the training mean)
    let q_bar = net.coordinates.output_shift.to_vec();
    let (errors, baseline): (Vec<f64>, Vec<f64>) = (200..216)
        .map(|s| {
            let m = prior_sample(&problem, s);
            let q = pde.evaluate(&m).unwrap();
            let rel = |f: &[f64]| norm(&axpy(f, -1.0, &q)) / norm(&q);
            (rel(&net.evaluate(&m).unwrap()), rel(&q_bar))
        })
        .unzip();
    let (mean, base) = (
        errors.iter().sum::<f64>() / 16.0,
        baseline.iter().sum::<f64>() / 16.0,
    );
    eprintln!("mean relative error: surrogate {mean:.4}, mean predictor {base:.4}");
    assert!(
        mean < 0.05 && mean < 0.3 * base,
        "surrogate {mean} vs mean predictor {base} ({errors:?})"
    );
    // a parameter of the wrong length is refused
    assert!(net.linearize(&m[..10]).is_err());
}
