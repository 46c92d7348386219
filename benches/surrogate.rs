//! Surrogate vs PDE at n = 64 (Poisson, d_M = 4225, d_Q = 50): `pde_forward_and_jacobian` (forward
//! solve + full 50-row Jacobian) against `dipnet_linearize` (encode, MLP 100 → 6 × 50 → 50 with its
//! input Jacobian, decode: q and the reduced Jacobian J_r) for a DIPNet 100-50 (untrained weights
//! and random orthonormal-like bases: the cost does not depend on their values); `dipnet_evaluate`
//! (f only), `dipnet_reduced_output_and_jacobian` (given the encoded coefficients c: f and J_r) and
//! `dipnet_reduced_pullback` (given c: f and one vector–Jacobian product, an HMC leapfrog step);
//! and the generic network 4225 → 6 × 50 → 50 (`generic_linearize_full_jacobian`: f and its
//! full d_Q × d_M Jacobian; `generic_evaluate`).
//!
//! `anchored_hmc_64`: one surrogate-only HMC move (8 leapfrog steps, then a complement pCN move)
//! on the DIPNet anchored at a PDE linearization, q₀ + J₀(m − m₀) + g(m), in a 50-dimensional
//! subspace: `generic_path` linearizes the anchored map at m every leapfrog step (J_gᵀ w and
//! J₀ᵀ w in d_M), `network_path` runs on g with the anchor as a fixed affine correction, so each
//! leapfrog step is g's reduced pullback (what `dino infer --kernel hmc` does for an anchored
//! surrogate).

use burn::tensor::Device;
use criterion::{criterion_group, criterion_main, Criterion};
use dino::inference::hmc::{HmcSettings, SubspaceHmc};
use dino::inference::mmala::{AffineCorrection, BasisJacobian, LocalGeometry, Subspace};
use dino::inference::Posterior;
use dino::misfit::GaussianMisfit;
use dino::nn::{Anchor, AnchoredMap, DipNet, InputBasis, Mlp, MlpShape, ReducedCoordinates};
use dino::problem::Problem;
use dino::rng::{stream, Purpose};
use dino::DifferentiableMap;
use ndarray::{Array1, Array2};
use std::hint::black_box;

fn surrogate(c: &mut Criterion) {
    let problem = Problem::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/problems/poisson.toml"
    ))
    .unwrap();
    let model = problem.model().unwrap();
    let m = problem
        .prior()
        .unwrap()
        .sample(&mut stream(1, Purpose::PriorSample, 0));
    let (d_m, d_q, r_m, r_q) = (4225, 50, 100, 50);
    let basis = |rows: usize, cols: usize| {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            ((i * 31 + j * 17) as f64 * 0.1).sin() / (rows as f64).sqrt()
        })
    };
    let device = Device::flex();
    let network = |input_basis: InputBasis, output_basis: Array2<f64>| {
        let r_m = input_basis.rank();
        let coordinates = ReducedCoordinates {
            input_basis,
            input_shift: Array1::zeros(d_m),
            output_basis,
            output_shift: Array1::zeros(d_q),
            input_mean: Array1::zeros(r_m),
            input_std: Array1::ones(r_m),
            output_mean: Array1::zeros(r_q),
            output_std: Array1::ones(r_q),
        };
        let shape = MlpShape {
            input: r_m,
            width: 50,
            depth: 6,
            output: r_q,
        };
        DipNet::new(&Mlp::new(shape, 0, &device), coordinates)
    };
    let net = network(
        InputBasis::reduced(basis(d_m, r_m), basis(d_m, r_m)),
        basis(d_q, r_q),
    );
    // the paper's Generic: all d_M inputs, identity output basis (r_Q = d_Q = 50)
    let generic = network(InputBasis::Identity { dim: d_m }, Array2::eye(d_q));
    let mut group = c.benchmark_group("surrogate_vs_pde_64");
    group.bench_function("pde_forward_and_jacobian", |b| {
        b.iter(|| {
            let lin = model.linearize(black_box(&m)).unwrap();
            black_box(lin.jacobian())
        })
    });
    group.bench_function("dipnet_linearize", |b| {
        b.iter(|| black_box(net.linearize(black_box(&m)).unwrap().output()[0]))
    });
    group.bench_function("dipnet_evaluate", |b| {
        b.iter(|| black_box(net.evaluate(black_box(&m)).unwrap()[0]))
    });
    let coefficients = net.encode(&m);
    group.bench_function("dipnet_reduced_output_and_jacobian", |b| {
        b.iter(|| black_box(net.evaluate_reduced(black_box(&coefficients)).1[[0, 0]]))
    });
    // what one HMC leapfrog step needs: f and (∂f/∂c)ᵀ w at the coefficients, no Jacobian
    let e = coefficients.to_vec();
    group.bench_function("dipnet_reduced_pullback", |b| {
        b.iter(|| {
            let (q, g) = net
                .reduced_pullback(black_box(&e), &mut |q| q.to_vec())
                .unwrap();
            black_box(q[0] + g[0])
        })
    });
    group.bench_function("generic_linearize_full_jacobian", |b| {
        b.iter(|| {
            let lin = generic.linearize(black_box(&m)).unwrap();
            black_box(lin.jacobian()[[0, 0]])
        })
    });
    group.bench_function("generic_evaluate", |b| {
        b.iter(|| black_box(generic.evaluate(black_box(&m)).unwrap()[0]))
    });
    group.finish();

    // surrogate-only HMC on the anchored DIPNet: generic path vs network + affine correction
    let prior = problem.prior().unwrap();
    let anchor = Anchor::of(model.as_ref(), &m).unwrap();
    let anchored = AnchoredMap {
        network: &net,
        anchor: &anchor,
    };
    let data = model
        .evaluate(&prior.sample(&mut stream(2, Purpose::PriorSample, 0)))
        .unwrap();
    let misfit = GaussianMisfit::new(data, 1e-4).unwrap();
    let anchored_post = Posterior::new(&anchored, &prior, misfit.clone()).unwrap();
    let net_post = Posterior::new(&net, &prior, misfit).unwrap();
    let subspace = Subspace::new(&prior, basis(d_m, 50));
    let correction = AffineCorrection::at(&anchored_post, &net_post, &subspace, &m).unwrap();
    let settings = HmcSettings {
        leapfrog_steps: 8,
        leapfrog_size: 0.25,
        transitions: 1,
    };
    let c_m = subspace.coordinates(&prior, &m);
    let mut group = c.benchmark_group("anchored_hmc_64");
    for (name, post, corr) in [
        ("generic_path", &anchored_post, None),
        ("network_path", &net_post, Some(&correction)),
    ] {
        let mut jac = BasisJacobian::new(post, &subspace);
        if let Some(k) = corr {
            jac = jac.with_correction(k.clone());
        }
        let local = LocalGeometry::at(post, &jac, &subspace, &m, c_m.clone()).unwrap();
        let hmc = SubspaceHmc::new(post, &subspace, corr, local.hessian_eigen(), settings).unwrap();
        let x = hmc.start(&m).unwrap();
        let mut k = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                k += 1;
                let run = hmc.sweep(x.clone(), 0.9, &mut stream(3, Purpose::Chain, k));
                black_box(run.end.phi)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, surrogate);
criterion_main!(benches);
