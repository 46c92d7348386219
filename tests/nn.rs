//! Network derivatives: the forward-mode input Jacobian and the autodiff weight gradient of the H1
//! loss against finite differences, and H1 training beating L2 training on an analytic map.

use burn::tensor::{Device, Tensor, TensorData};
use dino::nn::mlp::Directions;
use dino::nn::train::{
    accuracies, batch_loss, full_batch_loss, train, JacobianMetric, MetricDirections, Samples,
    TrainSettings,
};
use dino::nn::{DenseMlp, JacobianTerm, Loss, Mlp, MlpShape};
use dino::rng::{stream, Purpose};
use rand::Rng;
use rand_distr::StandardNormal;

const SHAPE: MlpShape = MlpShape {
    input: 6,
    width: 12,
    depth: 3,
    output: 4,
};

fn batch(values: &[f32], rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values.to_vec(), [rows, cols]), device)
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn input_jacobian_matches_finite_differences() {
    let device = Device::flex();
    let mlp = Mlp::new(SHAPE, 3, &device);
    let x: Vec<f32> = (0..12).map(|i| ((i * 7 % 11) as f32 - 5.0) / 6.0).collect();
    let (y, jac) = mlp.forward_with_jacobian(batch(&x, 2, 6, &device));
    assert_eq!(jac.dims(), [2, 4, 6]);
    assert_eq!(
        to_vec(y.clone()),
        to_vec(mlp.forward(batch(&x, 2, 6, &device)))
    );
    let jac = to_vec(jac);
    let eps = 1e-2f32;
    let mut worst = 0.0f32;
    for k in 0..6 {
        let (mut xp, mut xm) = (x.clone(), x.clone());
        for b in 0..2 {
            xp[b * 6 + k] += eps;
            xm[b * 6 + k] -= eps;
        }
        let (yp, ym) = (
            to_vec(mlp.forward(batch(&xp, 2, 6, &device))),
            to_vec(mlp.forward(batch(&xm, 2, 6, &device))),
        );
        for b in 0..2 {
            for o in 0..4 {
                let fd = (yp[b * 4 + o] - ym[b * 4 + o]) / (2.0 * eps);
                worst = worst.max((fd - jac[b * 24 + o * 6 + k]).abs());
            }
        }
    }
    assert!(worst < 2e-3, "max |∇φ − finite differences| = {worst}");
}

/// Checks the autodiff weight gradient of `loss_of` along a random direction of all weights
/// against central finite differences.
fn check_weight_gradient(mlp: &Mlp, loss_of: &dyn Fn(&Mlp) -> Tensor<1>, what: &str) {
    let device = Device::flex().autodiff();
    let mut rng = stream(19, Purpose::Sketch, 1);
    let mut normal = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| rng.sample::<f64, _>(StandardNormal) as f32)
            .collect()
    };
    let grads = mlp.gradients(&loss_of(mlp).backward());
    let weights = mlp.weights();
    let direction: Vec<(Vec<f32>, Vec<f32>)> = weights
        .iter()
        .map(|(w, b, _, _)| (normal(w.len()), normal(b.len())))
        .collect();
    let analytic: f64 = grads
        .iter()
        .zip(&direction)
        .map(|((gw, gb), (dw, db))| {
            gw.iter()
                .zip(dw)
                .chain(gb.iter().zip(db))
                .map(|(g, d)| f64::from(g * d))
                .sum::<f64>()
        })
        .sum();
    let shifted = |eps: f32| {
        let moved: Vec<_> = weights
            .iter()
            .zip(&direction)
            .map(|((w, b, i, o), (dw, db))| {
                (
                    w.iter().zip(dw).map(|(a, d)| a + eps * d).collect(),
                    b.iter().zip(db).map(|(a, d)| a + eps * d).collect(),
                    *i,
                    *o,
                )
            })
            .collect();
        f64::from(to_vec(loss_of(&Mlp::from_weights(&moved, &device)))[0])
    };
    let eps = 1e-3;
    let fd = (shifted(eps) - shifted(-eps)) / (2.0 * f64::from(eps));
    assert!(
        (fd - analytic).abs() < 2e-2 * analytic.abs(),
        "{what}: autodiff {analytic} vs finite differences {fd}"
    );
}

#[test]
fn weight_gradients_of_every_loss_match_finite_differences() {
    let device = Device::flex().autodiff();
    let mlp = Mlp::new(SHAPE, 4, &device);
    let data = analytic_samples(5, 9);
    let svd = data.svd(4).unwrap();
    let blocks: Vec<Vec<usize>> = (0..5).map(|i| vec![i % 4, (i + 2) % 4]).collect();
    for (loss, blocks) in [
        (Loss::L2, None),
        (Loss::H1, None),
        (Loss::with_term(JacobianTerm::ReducedSvd { rank: 4 }), None),
        (
            Loss::with_term(JacobianTerm::Subsampled { rank: 4, block: 2 }),
            Some(&blocks[..]),
        ),
    ] {
        let loss_of = |m: &Mlp| full_batch_loss(m, &data, Some(&svd), loss, blocks, &device);
        check_weight_gradient(&mlp, &loss_of, loss.jacobian.name());
    }
    // the same losses measured in a metric (directions D, output scale S), as DIPNet trains
    let mut metric_data = data.clone();
    metric_data.metric = Some(JacobianMetric {
        directions: MetricDirections::Rows {
            d: (0..36).map(|k| ((k * 7 % 13) as f32 - 6.0) / 5.0).collect(),
            k: 6,
        },
        output_scale: vec![1.5, 0.5, 1.0, 2.0],
    });
    // and in a diagonal metric (the generic network's input scaling, D never formed)
    let mut diagonal_data = data.clone();
    diagonal_data.metric = Some(JacobianMetric {
        directions: MetricDirections::Diagonal(vec![0.5, 2.0, 1.0, 1.5, 0.8, 1.2]),
        output_scale: vec![1.5, 0.5, 1.0, 2.0],
    });
    for (samples, name) in [(&metric_data, "rows"), (&diagonal_data, "diagonal")] {
        let metric_svd = samples.svd(4).unwrap();
        for loss in [
            Loss::H1,
            Loss::with_term(JacobianTerm::ReducedSvd { rank: 4 }),
        ] {
            let loss_of =
                |m: &Mlp| full_batch_loss(m, samples, Some(&metric_svd), loss, None, &device);
            check_weight_gradient(
                &mlp,
                &loss_of,
                &format!("{} ({name})", loss.jacobian.name()),
            );
        }
    }
    // the diagonal metric D = diag(s) is the row metric with D formed: same loss values
    let MetricDirections::Diagonal(scales) = &diagonal_data.metric.as_ref().unwrap().directions
    else {
        unreachable!()
    };
    let mut formed = diagonal_data.clone();
    formed.metric.as_mut().unwrap().directions = MetricDirections::Rows {
        d: (0..36)
            .map(|i| if i / 6 == i % 6 { scales[i % 6] } else { 0.0 })
            .collect(),
        k: 6,
    };
    for loss in [
        Loss::H1,
        Loss::with_term(JacobianTerm::ReducedSvd { rank: 3 }),
    ] {
        let value = |samples: &Samples| {
            let svd = samples.svd(3).unwrap();
            to_vec(full_batch_loss(
                &mlp,
                samples,
                Some(&svd),
                loss,
                None,
                &device,
            ))[0]
        };
        let (a, b) = (value(&diagonal_data), value(&formed));
        assert!(
            (a - b).abs() < 1e-5 * a.abs(),
            "{}: diagonal {a} vs formed {b}",
            loss.jacobian.name()
        );
    }
    // the batch loss of the trainer's inner loop is the same function
    let rows: Vec<f32> = data.x.clone();
    let jt = Tensor::from_data(
        TensorData::new(data.jacobian.clone().unwrap(), [5, 4, 6]),
        &device,
    );
    let a = to_vec(batch_loss(
        &mlp,
        batch(&rows, 5, 6, &device),
        batch(&data.q, 5, 4, &device),
        Some(jt),
        Loss::H1,
    ))[0];
    let b = to_vec(full_batch_loss(&mlp, &data, None, Loss::H1, None, &device))[0];
    assert!((a - b).abs() < 1e-6 * a.abs());
}

#[test]
fn sample_svd_reconstructs_each_jacobian_and_rejects_too_large_ranks() {
    let data = analytic_samples(8, 4);
    assert!(data.svd(5).is_err(), "rank 5 > min(4, 6)");
    assert!(data.svd(0).is_err());
    let svd = data.svd(4).unwrap();
    // U Σ Vᵀ reproduces each Jacobian (rank 4 = full row rank here)
    for i in 0..8 {
        for a in 0..4 {
            for b in 0..6 {
                let r: f32 = (0..4)
                    .map(|k| {
                        svd.u[(i * 4 + a) * 4 + k] * svd.s[i * 4 + k] * svd.v[(i * 6 + b) * 4 + k]
                    })
                    .sum();
                let j = data.jacobian.as_ref().unwrap()[(i * 4 + a) * 6 + b];
                assert!((r - j).abs() < 1e-4, "SVD reconstruction {r} vs {j}");
            }
        }
    }
}

#[test]
fn jacobians_along_directions_and_of_wide_inputs_match_the_f64_network_and_finite_differences() {
    let device = Device::flex();
    // input 20 > width 8: the full Jacobian is propagated from the first pre-activation
    for shape in [
        MlpShape {
            input: 20,
            width: 8,
            depth: 3,
            output: 5,
        },
        MlpShape {
            input: 3,
            width: 8,
            depth: 2,
            output: 7,
        },
    ] {
        let mlp = Mlp::new(shape, 2, &device);
        let dense = DenseMlp::from_mlp(&mlp);
        let x: Vec<f32> = (0..shape.input)
            .map(|i| ((i * 5 % 7) as f32 - 3.0) / 4.0)
            .collect();
        let (y, jac) = mlp.forward_with_jacobian(batch(&x, 1, shape.input, &device));
        let (y, jac) = (to_vec(y), to_vec(jac));
        let xd = ndarray::Array1::from_iter(x.iter().map(|&v| f64::from(v)));
        let (yd, jd) = dense.forward_with_jacobian(xd.view());
        for o in 0..shape.output {
            assert!((f64::from(y[o]) - yd[o]).abs() < 1e-5);
            for i in 0..shape.input {
                assert!(
                    (f64::from(jac[o * shape.input + i]) - jd[[o, i]]).abs() < 1e-5,
                    "{shape:?}: burn vs f64 Jacobian at ({o}, {i})"
                );
            }
        }
        // f64 Jacobian vs central differences
        let h = 1e-6;
        for i in 0..shape.input {
            let (mut xp, mut xm) = (xd.clone(), xd.clone());
            xp[i] += h;
            xm[i] -= h;
            let fd = (dense.forward(xp.view()) - dense.forward(xm.view())) / (2.0 * h);
            for o in 0..shape.output {
                assert!(
                    (fd[o] - jd[[o, i]]).abs() < 1e-6,
                    "{shape:?}: FD at ({o}, {i})"
                );
            }
        }
        // directional derivatives ∇φ Dᵀ for two directions
        let dirs: Vec<f32> = (0..2 * shape.input)
            .map(|k| ((k * 3 % 5) as f32 - 2.0) / 3.0)
            .collect();
        let dt = Tensor::from_data(TensorData::new(dirs.clone(), [1, 2, shape.input]), &device);
        let (_, jd_dirs) = mlp.forward_with_directions(
            batch(&x, 1, shape.input, &device),
            Some(Directions::PerSample(dt)),
        );
        let jd_dirs = to_vec(jd_dirs);
        // the same directions shared by the batch give the same derivatives
        let shared = Tensor::from_data(TensorData::new(dirs.clone(), [2, shape.input]), &device);
        let (_, jd_shared) = mlp.forward_with_directions(
            batch(&x, 1, shape.input, &device),
            Some(Directions::Shared(shared)),
        );
        assert_eq!(to_vec(jd_shared), jd_dirs);
        for o in 0..shape.output {
            for k in 0..2 {
                let expect: f64 = (0..shape.input)
                    .map(|i| jd[[o, i]] * f64::from(dirs[k * shape.input + i]))
                    .sum();
                assert!((f64::from(jd_dirs[o * 2 + k]) - expect).abs() < 1e-5);
            }
        }
    }
}

/// q(x) = A x + c ⊙ (B x)² with rank-2 B: a low-rank quadratic map ℝ⁶ → ℝ⁴ and its Jacobian.
fn analytic_samples(count: usize, seed: u64) -> Samples {
    let a: [[f32; 6]; 4] = [
        [0.5, -0.3, 0.2, 0.0, 0.1, 0.4],
        [0.1, 0.6, -0.2, 0.3, 0.0, -0.1],
        [-0.4, 0.2, 0.5, 0.1, 0.3, 0.0],
        [0.2, 0.0, -0.1, 0.6, -0.3, 0.2],
    ];
    let b: [[f32; 6]; 2] = [
        [0.7, 0.1, -0.5, 0.3, 0.2, -0.4],
        [-0.2, 0.6, 0.3, -0.5, 0.4, 0.1],
    ];
    let c: [[f32; 2]; 4] = [[1.0, 0.5], [-0.8, 1.2], [0.6, -1.0], [1.5, 0.3]];
    let mut rng = stream(seed, Purpose::PriorSample, 0);
    let (mut xs, mut qs, mut js) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..count {
        let x: Vec<f32> = (0..6)
            .map(|_| rng.sample::<f64, _>(StandardNormal) as f32)
            .collect();
        let bx: Vec<f32> = b
            .iter()
            .map(|row| row.iter().zip(&x).map(|(r, v)| r * v).sum())
            .collect();
        for k in 0..4 {
            let ax: f32 = a[k].iter().zip(&x).map(|(r, v)| r * v).sum();
            qs.push(ax + c[k][0] * bx[0] * bx[0] + c[k][1] * bx[1] * bx[1]);
            for i in 0..6 {
                js.push(a[k][i] + 2.0 * (c[k][0] * bx[0] * b[0][i] + c[k][1] * bx[1] * b[1][i]));
            }
        }
        xs.extend(x);
    }
    Samples {
        count,
        input: 6,
        output: 4,
        x: xs,
        q: qs,
        jacobian: Some(js),
        metric: None,
    }
}

#[test]
fn h1_training_beats_l2_training_on_a_low_rank_quadratic() {
    let device = Device::flex().autodiff();
    let (training, test) = (analytic_samples(32, 1), analytic_samples(256, 2));
    let settings = TrainSettings::adam(300, 8, 3e-3, 0);
    let fit = |weights| {
        let (mlp, history) = train(
            Mlp::new(SHAPE, 7, &device),
            &training,
            weights,
            &settings,
            &device,
        )
        .unwrap();
        assert!(
            history.last().unwrap() < &history[0],
            "the loss decreases: {history:?}"
        );
        accuracies(&mlp, &test, &device)
    };
    let (l2_of_l2, h1_of_l2) = fit(Loss::L2);
    let (l2_of_h1, h1_of_h1) = fit(Loss::H1);
    let (h1_of_l2, h1_of_h1) = (h1_of_l2.unwrap(), h1_of_h1.unwrap());
    eprintln!("L2 training: l2 {l2_of_l2:.3} h1 {h1_of_l2:.3}; H1 training: l2 {l2_of_h1:.3} h1 {h1_of_h1:.3}");
    assert!(
        h1_of_h1 > h1_of_l2 + 0.1,
        "H1 accuracy: H1-trained {h1_of_h1:.3} vs L2-trained {h1_of_l2:.3}"
    );
    assert!(
        l2_of_h1 >= l2_of_l2 - 0.02,
        "derivative data do not cost L2 accuracy: {l2_of_h1:.3} vs {l2_of_l2:.3}"
    );
}

#[test]
fn training_is_deterministic_given_the_seed() {
    let device = Device::flex().autodiff();
    let data = analytic_samples(16, 3);
    let settings = TrainSettings::adam(5, 4, 1e-3, 11);
    let run = || {
        train(
            Mlp::new(SHAPE, 5, &device),
            &data,
            Loss::H1,
            &settings,
            &device,
        )
        .unwrap()
        .0
        .weights()
    };
    assert_eq!(run(), run());
}

#[test]
fn interrupted_training_resumes_to_the_uninterrupted_result() {
    use dino::nn::train::train_network;
    let device = Device::flex().autodiff();
    let data = analytic_samples(24, 4);
    let (train_set, validation) = data.split(0.75, 1);
    let validation = validation.expect("a validation set");
    let tmp = tempfile::tempdir().unwrap();
    let settings_in = |dir: &str| {
        let mut s = TrainSettings::adam(8, 4, 3e-3, 2);
        s.final_learning_rate = 3e-4;
        s.resume_dir = Some(tmp.path().join(dir));
        s
    };
    let run = |settings: &TrainSettings, fail_from: Option<usize>| {
        train_network(
            Mlp::new(SHAPE, 5, &device),
            &train_set,
            Some(&validation),
            Loss::H1,
            settings,
            &device,
            &mut |_, record| match fail_from {
                Some(e) if record.epoch >= e => Err(dino::error::Error::numerical(
                    "test",
                    "simulated interruption",
                )),
                _ => Ok(()),
            },
        )
    };
    let whole = run(&settings_in("a"), None).unwrap();
    assert!(
        !tmp.path().join("a").exists(),
        "the state is removed once training ends"
    );
    // interrupted at the first improvement from epoch 3 on, after its state was written
    let settings = settings_in("b");
    assert!(run(&settings, Some(3)).is_err());
    assert!(tmp.path().join("b/state.json").exists());
    let resumed = run(&settings, None).unwrap();
    assert_eq!(resumed.history.len(), whole.history.len());
    assert!(resumed.resumed_seconds > 0.0);
    for (a, b) in resumed.history.iter().zip(&whole.history) {
        assert_eq!(
            (a.train_loss, a.validation_loss),
            (b.train_loss, b.validation_loss),
            "epoch {}",
            a.epoch
        );
    }
    assert_eq!(resumed.best_epoch, whole.best_epoch);
    assert_eq!(resumed.mlp.weights(), whole.mlp.weights());
    // another run's state is not resumed: other settings start afresh
    let mut other = settings_in("b");
    other.seed = 3;
    assert!(run(&other, Some(2)).is_err());
    let mut again = settings_in("b");
    again.seed = 4;
    let fresh = run(&again, None).unwrap();
    assert_eq!(fresh.resumed_seconds, 0.0);
}
