//! Network derivatives: the forward-mode input Jacobian and the autodiff weight gradient of the H1
//! loss against finite differences, and H1 training beating L2 training on an analytic map.

use burn::tensor::{Device, Tensor, TensorData};
use dino::nn::train::{accuracies, batch_loss, train, AdamSettings, Samples};
use dino::nn::{LossWeights, Mlp, MlpShape};
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

#[test]
fn weight_gradient_of_the_h1_loss_matches_finite_differences() {
    let device = Device::flex().autodiff();
    let mlp = Mlp::new(SHAPE, 4, &device);
    let mut rng = stream(9, Purpose::Sketch, 0);
    let mut normal = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| rng.sample::<f64, _>(StandardNormal) as f32)
            .collect()
    };
    let (x, q, j) = (normal(5 * 6), normal(5 * 4), normal(5 * 4 * 6));
    let loss_of = |m: &Mlp| {
        let jt = Tensor::from_data(TensorData::new(j.clone(), [5, 4, 6]), &device);
        batch_loss(
            m,
            batch(&x, 5, 6, &device),
            batch(&q, 5, 4, &device),
            Some(jt),
            LossWeights::H1,
        )
    };
    let grads = mlp.gradients(&loss_of(&mlp).backward());
    // directional derivative along a random direction d of all weights
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
        "autodiff {analytic} vs finite differences {fd}"
    );
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
    }
}

#[test]
fn h1_training_beats_l2_training_on_a_low_rank_quadratic() {
    let device = Device::flex().autodiff();
    let (training, test) = (analytic_samples(32, 1), analytic_samples(256, 2));
    let settings = AdamSettings {
        epochs: 300,
        batch_size: 8,
        learning_rate: 3e-3,
        seed: 0,
    };
    let fit = |weights| {
        let (mlp, history) = train(
            Mlp::new(SHAPE, 7, &device),
            &training,
            weights,
            settings,
            &device,
        );
        assert!(
            history.last().unwrap() < &history[0],
            "the loss decreases: {history:?}"
        );
        accuracies(&mlp, &test, &device)
    };
    let (l2_of_l2, h1_of_l2) = fit(LossWeights::L2);
    let (l2_of_h1, h1_of_h1) = fit(LossWeights::H1);
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
    let settings = AdamSettings {
        epochs: 5,
        batch_size: 4,
        learning_rate: 1e-3,
        seed: 11,
    };
    let run = || {
        train(
            Mlp::new(SHAPE, 5, &device),
            &data,
            LossWeights::H1,
            settings,
            &device,
        )
        .0
        .weights()
    };
    assert_eq!(run(), run());
}
