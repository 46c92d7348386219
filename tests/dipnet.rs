//! DIPNet as a differentiable map: trained on Poisson data in active-subspace / POD coordinates,
//! its J v and Jᵀ w pass the same Taylor and adjoint tests as the PDE models, and it approximates
//! the PDE map.

mod common;

use burn::tensor::Device;
use common::*;
use dino::bases::{active_subspace_from_data, pod, EigenSettings};
use dino::data::{generate, load, GenerateOptions};
use dino::nn::model_file::{Architecture, TrainedFor};
use dino::nn::train::{train, MetricDirections, TrainSettings};
use dino::nn::{
    Anchor, AnchoredMap, DipNet, InputBasis, Loss, Mlp, MlpShape, ModelRecord, ReducedCoordinates,
    Surrogate,
};
use dino::taylor::TaylorTest;
use dino::DifferentiableMap;

fn trained_mlp(dir: &std::path::Path) -> (Mlp, ReducedCoordinates, dino::problem::Problem) {
    let problem = poisson(8);
    let options = GenerateOptions::new(64, 1, dir.join("data"));
    generate(&problem, &options).unwrap();
    let data = load(&[dir.join("data")]).unwrap();
    let prior = problem.prior().unwrap();
    let input = active_subspace_from_data(
        &data,
        &prior,
        &dino::problem::NoiseModel::Relative(0.01),
        EigenSettings {
            rank: 12,
            oversampling: 10,
            seed: 0,
        },
    )
    .unwrap();
    let output = pod(&data, 12).unwrap();
    let coords = ReducedCoordinates::fit(
        InputBasis::reduced(input.encoder, input.decoder),
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
    let settings = TrainSettings::adam(400, 16, 3e-3, 0);
    let (mlp, _) = train(
        Mlp::new(shape, 0, &device),
        &samples,
        Loss::H1,
        &settings,
        &device,
    )
    .unwrap();
    (mlp, coords, problem)
}

fn trained_dipnet(dir: &std::path::Path) -> (DipNet, dino::problem::Problem) {
    let (mlp, coords, problem) = trained_mlp(dir);
    (DipNet::new(&mlp, coords), problem)
}

/// The derivatives of a network map at m along v: J v by the Taylor test (the network runs in
/// f32: ε from 0.5, where the remainder is far above rounding), Jᵀ w by the adjoint identity,
/// and the full Jacobian against J v.
fn assert_derivatives(map: &dyn DifferentiableMap, m: &[f64], v: &[f64], what: &str) {
    let lin = map.linearize(m).unwrap();
    TaylorTest::run(
        |e| map.evaluate(&axpy(m, e, v)).unwrap(),
        lin.output(),
        &lin.jvp(v),
        0.5,
        5,
    )
    .assert_second_order(what, 0.15);
    let w: Vec<f64> = (0..lin.output().len())
        .map(|k| (k as f64 * 0.37).sin())
        .collect();
    let (a, b) = (dot(&w, &lin.jvp(v)), dot(&lin.vjp(&w), v));
    assert!(
        (a - b).abs() <= 1e-10 * a.abs().max(b.abs()),
        "{what}: adjoint identity {a} vs {b}"
    );
    let jv: Vec<f64> = lin
        .jacobian()
        .rows()
        .into_iter()
        .map(|r| r.iter().zip(v).map(|(a, b)| a * b).sum())
        .collect();
    assert!(
        norm(&axpy(&jv, -1.0, &lin.jvp(v))) < 1e-10 * norm(&jv),
        "{what}: J v"
    );
}

fn record_for(problem: &dino::problem::Problem, shape: MlpShape, d_m: usize) -> ModelRecord {
    ModelRecord::new(
        Architecture {
            kind: "dipnet".into(),
            mlp: shape,
            input_basis: "active-subspace".into(),
            output_basis: "pod".into(),
        },
        TrainedFor::new(problem, d_m, 50).unwrap(),
    )
}

/// The DIPNet Jacobian target in the metric of the full Jacobian: for each sample,
/// ‖J − ∇f‖²_F = ‖T − S_y ∇φ Dᵀ‖²_F + ‖J‖²_F − ‖T‖²_F (so training on T minimizes the full error).
#[test]
fn jacobian_metric_target_measures_the_full_jacobian_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mlp, coords, problem) = trained_mlp(dir.path());
    let net = DipNet::new(&mlp, coords.clone());
    let pde = problem.model().unwrap();
    let m = prior_sample(&problem, 400);
    let j = pde.linearize(&m).unwrap().jacobian();
    let m2 = ndarray::Array2::from_shape_vec((1, m.len()), m.clone()).unwrap();
    let q2 = ndarray::Array2::from_shape_vec((1, 50), pde.evaluate(&m).unwrap()).unwrap();
    let j3 = j.mapv(|v| v as f32).insert_axis(ndarray::Axis(0));
    let samples = coords.samples(&m2, &q2, Some(&j3));
    let metric = samples.metric.as_ref().unwrap();
    let MetricDirections::Rows { d: directions, .. } = &metric.directions else {
        panic!("a reduced basis measures along formed directions")
    };
    let (r_q, r_m) = (samples.output, samples.input);
    let x = ndarray::Array1::from_iter(samples.x.iter().map(|&v| f64::from(v)));
    let (_, dphi) = net.network.forward_with_jacobian(x.view());
    let target = samples.jacobian.as_ref().unwrap();
    let (mut misfit, mut t_norm) = (0.0, 0.0);
    for a in 0..r_q {
        for k in 0..r_m {
            let pred: f64 = (0..r_m)
                .map(|b| dphi[[a, b]] * f64::from(directions[k * r_m + b]))
                .sum::<f64>()
                * f64::from(metric.output_scale[a]);
            let t = f64::from(target[a * r_m + k]);
            misfit += (t - pred).powi(2);
            t_norm += t * t;
        }
    }
    let full = net.linearize(&m).unwrap().jacobian();
    let lhs = (&j - &full).mapv(|v| v * v).sum();
    let rhs = misfit + j.mapv(|v| v * v).sum() - t_norm;
    assert!(
        (lhs - rhs).abs() < 1e-4 * j.mapv(|v| v * v).sum(),
        "‖J − ∇f‖² = {lhs} vs metric identity {rhs}"
    );
}

#[test]
fn model_folders_round_trip_refuse_other_problems_and_report_damaged_files() {
    let dir = tempfile::tempdir().unwrap();
    let (mlp, coords, problem) = trained_mlp(dir.path());
    let shape = MlpShape {
        input: 12,
        width: 32,
        depth: 3,
        output: 12,
    };
    let model_dir = dir.path().join("model");
    let record = record_for(&problem, shape, 81);
    Surrogate::save(&mlp, &record, &coords, &model_dir).unwrap();
    let loaded = Surrogate::load(&model_dir).unwrap();
    let net = DipNet::new(&mlp, coords.clone());
    for s in 300..303 {
        let m = prior_sample(&problem, s);
        let (a, b) = (
            net.linearize(&m).unwrap(),
            loaded.net.linearize(&m).unwrap(),
        );
        assert_eq!(
            a.output(),
            b.output(),
            "identical predictions after save → load"
        );
        assert_eq!(a.jacobian(), b.jacobian());
    }
    loaded.check_problem(&problem, &model_dir).unwrap();
    // another problem (the same PDE on another mesh) is refused, naming the hash
    let other = poisson(16);
    let err = loaded
        .check_problem(&other, &model_dir)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("problem.hash") && err.contains("model.json"),
        "{err}"
    );

    // a truncated weights file is reported by name
    let weights = model_dir.join("weights.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let err = Surrogate::load(&model_dir).unwrap_err().to_string();
    assert!(
        err.contains("weights.safetensors") && err.contains("truncated"),
        "{err}"
    );

    // weights of another architecture (checksum consistent) are refused with the shape named
    let wrong = MlpShape { width: 16, ..shape };
    let other_mlp = Mlp::new(wrong, 1, &Device::flex());
    Surrogate::save(
        &other_mlp,
        &record_for(&problem, wrong, 81),
        &coords,
        &dir.path().join("wrong"),
    )
    .unwrap();
    Surrogate::save(&mlp, &record, &coords, &model_dir).unwrap();
    let good_json = std::fs::read_to_string(model_dir.join("model.json")).unwrap();
    std::fs::copy(dir.path().join("wrong/weights.safetensors"), &weights).unwrap();
    let wrong_sum = dino::io::checksum::hex(&std::fs::read(&weights).unwrap());
    let mut rec: serde_json::Value = serde_json::from_str(&good_json).unwrap();
    rec["files"]["weights.safetensors"] = serde_json::Value::String(wrong_sum);
    std::fs::write(model_dir.join("model.json"), rec.to_string()).unwrap();
    let err = Surrogate::load(&model_dir).unwrap_err().to_string();
    assert!(
        err.contains("weights.safetensors") && err.contains("architecture"),
        "{err}"
    );

    // an encoder of the wrong shape (checksum consistent) names the file and the shape
    Surrogate::save(&mlp, &record, &coords, &model_dir).unwrap();
    let small = ndarray::Array2::<f64>::zeros((81, 3));
    ndarray_npy::write_npy(model_dir.join("encoder.npy"), &small).unwrap();
    let sum = dino::io::checksum::hex(&std::fs::read(model_dir.join("encoder.npy")).unwrap());
    let mut rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model_dir.join("model.json")).unwrap())
            .unwrap();
    rec["files"]["encoder.npy"] = serde_json::Value::String(sum);
    std::fs::write(model_dir.join("model.json"), rec.to_string()).unwrap();
    let err = Surrogate::load(&model_dir).unwrap_err().to_string();
    assert!(
        err.contains("encoder.npy") && err.contains("(81, 12)"),
        "{err}"
    );

    // a model.json that is not one
    std::fs::write(model_dir.join("model.json"), "{}").unwrap();
    let err = Surrogate::load(&model_dir).unwrap_err().to_string();
    assert!(err.contains("model.json"), "{err}");
}

#[test]
fn dipnet_derivatives_pass_the_taylor_and_adjoint_tests_and_it_approximates_the_pde() {
    let dir = tempfile::tempdir().unwrap();
    let (net, problem) = trained_dipnet(dir.path());
    let pde = problem.model().unwrap();
    let (m, v) = (prior_sample(&problem, 101), prior_sample(&problem, 102));
    assert_derivatives(&net, &m, &v, "DIPNet J v");
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
        mean < 0.06 && mean < 0.3 * base,
        "surrogate {mean} vs mean predictor {base} ({errors:?})"
    );
    // a parameter of the wrong length is refused
    assert!(net.linearize(&m[..10]).is_err());
}

/// The generic network (identity input basis, the paper's "Generic"): its H1 target in the
/// diagonal metric measures the full Jacobian error exactly, training on it gives a
/// differentiable map that passes the Taylor and adjoint tests and approximates the PDE, and
/// its model folder (no encoder files) round-trips.
#[test]
fn generic_network_trains_in_the_full_jacobian_metric_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let problem = poisson(8);
    generate(
        &problem,
        &GenerateOptions::new(96, 1, dir.path().join("data")),
    )
    .unwrap();
    let data = load(&[dir.path().join("data")]).unwrap();
    let d_m = data.m.ncols();
    let coords = ReducedCoordinates::fit(
        InputBasis::Identity { dim: d_m },
        ndarray::Array2::eye(50),
        &data.m,
        &data.q,
    )
    .unwrap();
    let samples = coords.samples(&data.m, &data.q, data.jacobian.as_ref());
    assert_eq!((samples.input, samples.jacobian_columns()), (d_m, d_m));
    let shape = MlpShape {
        input: d_m,
        width: 32,
        depth: 3,
        output: 50,
    };
    let device = Device::flex().autodiff();
    let untrained = Mlp::new(shape, 0, &device);
    // ‖J − ∇f‖²_F = ‖T − S_y ∇φ diag(1/σ)‖²_F exactly (no part outside the bases)
    let net0 = DipNet::new(&untrained, coords.clone());
    let metric = samples.metric.as_ref().unwrap();
    let MetricDirections::Diagonal(scales) = &metric.directions else {
        panic!("the identity basis measures in the diagonal metric")
    };
    let m = data.m.row(3).to_vec();
    let x = ndarray::Array1::from_iter(samples.x[3 * d_m..4 * d_m].iter().map(|&v| f64::from(v)));
    let (_, dphi) = net0.network.forward_with_jacobian(x.view());
    let target = &samples.jacobian.as_ref().unwrap()[3 * 50 * d_m..4 * 50 * d_m];
    let misfit: f64 = (0..50 * d_m)
        .map(|i| {
            let (a, b) = (i / d_m, i % d_m);
            let pred = f64::from(metric.output_scale[a]) * dphi[[a, b]] * f64::from(scales[b]);
            (f64::from(target[i]) - pred).powi(2)
        })
        .sum();
    let j = data
        .jacobian
        .as_ref()
        .unwrap()
        .index_axis(ndarray::Axis(0), 3)
        .mapv(f64::from);
    let full = (&j - &net0.linearize(&m).unwrap().jacobian())
        .mapv(|v| v * v)
        .sum();
    assert!(
        (misfit - full).abs() < 1e-4 * full,
        "metric misfit {misfit} vs full Jacobian error {full}"
    );

    let settings = TrainSettings::adam(300, 16, 3e-3, 0);
    let (mlp, losses) = train(untrained, &samples, Loss::H1, &settings, &device).unwrap();
    assert!(losses[losses.len() - 1] < 0.3 * losses[0], "{losses:?}");
    let net = DipNet::new(&mlp, coords.clone());
    assert!(net.input_encoder().is_none());
    let pde = problem.model().unwrap();
    let (m, v) = (prior_sample(&problem, 101), prior_sample(&problem, 102));
    let lin = net.linearize(&m).unwrap();
    assert!(lin.reduced_jacobian().is_none());
    assert_derivatives(&net, &m, &v, "generic J v");
    let errors: Vec<f64> = (200..216)
        .map(|s| {
            let m = prior_sample(&problem, s);
            let q = pde.evaluate(&m).unwrap();
            norm(&axpy(&net.evaluate(&m).unwrap(), -1.0, &q)) / norm(&q)
        })
        .collect();
    let mean = errors.iter().sum::<f64>() / 16.0;
    assert!(mean < 0.1, "generic network's mean relative error {mean}");

    // model folder: no encoder files, identical predictions after loading
    let model_dir = dir.path().join("generic");
    let record = ModelRecord::new(
        Architecture {
            kind: "generic".into(),
            mlp: shape,
            input_basis: "identity".into(),
            output_basis: "identity".into(),
        },
        TrainedFor::new(&problem, d_m, 50).unwrap(),
    );
    Surrogate::save(&mlp, &record, &coords, &model_dir).unwrap();
    assert!(!model_dir.join("encoder.npy").exists());
    let loaded = Surrogate::load(&model_dir).unwrap();
    let lin2 = loaded.net.linearize(&m).unwrap();
    assert_eq!(lin.output(), lin2.output());
    assert_eq!(lin.jacobian(), lin2.jacobian());
    // an identity-basis record whose network input is not d_M is refused, naming the field
    let mut rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model_dir.join("model.json")).unwrap())
            .unwrap();
    rec["architecture"]["mlp"]["input"] = serde_json::json!(12);
    std::fs::write(model_dir.join("model.json"), rec.to_string()).unwrap();
    let err = Surrogate::load(&model_dir).unwrap_err().to_string();
    assert!(err.contains("architecture.mlp.input"), "{err}");
}

/// An anchored DIPNet f = q₀ + J₀ (m − m₀) + g(m): the residual targets vanish at m₀, f is the
/// anchor plus the network, its derivatives pass the Taylor and adjoint tests, it hands the
/// chains its network part (and no reduced fast path of its own), and the model folder
/// round-trips with the anchor and names a damaged anchor file.
#[test]
fn anchored_dipnet_adds_the_pde_linearization_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let (mlp, coords, problem) = trained_mlp(dir.path());
    let pde = problem.model().unwrap();
    let m0 = prior_sample(&problem, 7);
    let anchor = Anchor::of(pde.as_ref(), &m0).unwrap();
    let q0 = pde.evaluate(&m0).unwrap();
    let row = |v: &[f64]| ndarray::Array2::from_shape_vec((1, v.len()), v.to_vec()).unwrap();
    let r = anchor.residual_outputs(&row(&m0), &row(&q0));
    assert!(r.iter().all(|v| v.abs() < 1e-12), "{r}");
    let net = DipNet::new(&mlp, coords.clone());
    let map = AnchoredMap {
        network: &net,
        anchor: &anchor,
    };
    let (m, v) = (prior_sample(&problem, 101), prior_sample(&problem, 102));
    let f = map.evaluate(&m).unwrap();
    let g = net.evaluate(&m).unwrap();
    let a = anchor.at(ndarray::ArrayView1::from(&m[..]));
    let sum: Vec<f64> = g.iter().zip(&a).map(|(x, y)| x + y).collect();
    assert!(norm(&axpy(&f, -1.0, &sum)) <= 1e-12 * norm(&f));
    assert_eq!(map.linearize(&m).unwrap().output(), &f[..]);
    assert_derivatives(&map, &m, &v, "anchored DIPNet J v");
    // q depends on all of m: no reduced path; the chains get the network part
    assert!(map.input_encoder().is_none() && map.encode(&m).is_none());
    assert!(map.affine_free_part().is_some() && net.affine_free_part().is_none());
    // model folder
    let shape = MlpShape {
        input: 12,
        width: 32,
        depth: 3,
        output: 12,
    };
    let out = dir.path().join("anchored");
    let record = record_for(&problem, shape, m.len());
    Surrogate::save_anchored(&mlp, &record, &coords, Some(&anchor), &out).unwrap();
    let loaded = Surrogate::load(&out).unwrap();
    assert!(loaded.record.anchored);
    assert_eq!(loaded.anchor.as_ref(), Some(&anchor));
    let mut slot = None;
    assert_eq!(loaded.map(&mut slot).evaluate(&m).unwrap(), f);
    let file = out.join("anchor_jacobian.npy");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let err = Surrogate::load(&out).unwrap_err().to_string();
    assert!(err.contains("anchor_jacobian.npy"), "{err}");
}
