//! A minimal, deterministic Adam loop over (x, q, ∇q) samples, and the paper's accuracy metrics.
//! Sample order in epoch e is drawn from the stream (seed, shuffle, e): same seed, same network.

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use rand::seq::SliceRandom;

use super::loss::{relative_frobenius, relative_l2, LossWeights};
use super::mlp::Mlp;
use crate::rng::{stream, Purpose};

/// Training samples in row-major f32 arrays.
#[derive(Debug, Clone)]
pub struct Samples {
    pub count: usize,
    pub input: usize,
    pub output: usize,
    /// [count, input]
    pub x: Vec<f32>,
    /// [count, output]
    pub q: Vec<f32>,
    /// [count, output, input], when derivative data are available.
    pub jacobian: Option<Vec<f32>>,
}

impl Samples {
    fn batch(&self, rows: &[usize], device: &Device) -> (Tensor<2>, Tensor<2>, Option<Tensor<3>>) {
        let gather = |a: &[f32], width: usize| -> Vec<f32> {
            rows.iter()
                .flat_map(|&r| a[r * width..(r + 1) * width].iter().copied())
                .collect()
        };
        let b = rows.len();
        let x = Tensor::from_data(
            TensorData::new(gather(&self.x, self.input), [b, self.input]),
            device,
        );
        let q = Tensor::from_data(
            TensorData::new(gather(&self.q, self.output), [b, self.output]),
            device,
        );
        let j = self.jacobian.as_ref().map(|j| {
            Tensor::from_data(
                TensorData::new(
                    gather(j, self.output * self.input),
                    [b, self.output, self.input],
                ),
                device,
            )
        });
        (x, q, j)
    }
}

/// Adam settings.
#[derive(Debug, Clone, Copy)]
pub struct AdamSettings {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
}

/// The loss of one batch.
pub fn batch_loss(
    mlp: &Mlp,
    x: Tensor<2>,
    q: Tensor<2>,
    jac: Option<Tensor<3>>,
    weights: LossWeights,
) -> Tensor<1> {
    match jac {
        Some(j) if weights.jacobian != 0.0 => {
            let (y, jy) = mlp.forward_with_jacobian(x);
            relative_l2(y, q) * weights.l2 + relative_frobenius(jy, j) * weights.jacobian
        }
        _ => relative_l2(mlp.forward(x), q) * weights.l2,
    }
}

/// Trains `mlp` on `samples` with Adam; returns the network and the mean batch loss of each epoch.
/// `device` must be an autodiff device.
pub fn train(
    mut mlp: Mlp,
    samples: &Samples,
    weights: LossWeights,
    settings: AdamSettings,
    device: &Device,
) -> (Mlp, Vec<f64>) {
    let mut optimizer = AdamConfig::new().init();
    let mut history = Vec::with_capacity(settings.epochs);
    let mut order: Vec<usize> = (0..samples.count).collect();
    for epoch in 0..settings.epochs {
        order.shuffle(&mut stream(settings.seed, Purpose::Shuffle, epoch as u64));
        let mut total = 0.0;
        let mut batches = 0;
        for rows in order.chunks(settings.batch_size.max(1)) {
            let (x, q, j) = samples.batch(rows, device);
            let loss = batch_loss(&mlp, x, q, j, weights);
            total += f64::from(
                loss.clone()
                    .into_data()
                    .try_to_vec::<f32>()
                    .expect("f32 loss")[0],
            );
            batches += 1;
            let grads = GradientsParams::from_grads(loss.backward(), &mlp);
            mlp = optimizer.step(settings.learning_rate, mlp, grads);
        }
        history.push(total / batches.max(1) as f64);
    }
    (mlp, history)
}

/// The paper's accuracies (as its code computes them): `l2` = 1 − sqrt(E[‖q − f‖²/‖q‖²]) and
/// `h1` = 1 − sqrt(E[‖∇q − ∇f‖²_F/‖∇q‖²_F]) (None without derivative data).
pub fn accuracies(mlp: &Mlp, samples: &Samples, device: &Device) -> (f64, Option<f64>) {
    let rows: Vec<usize> = (0..samples.count).collect();
    let (x, q, j) = samples.batch(&rows, device);
    let (y, jy) = mlp.forward_with_jacobian(x);
    let scalar = |t: Tensor<1>| f64::from(t.into_data().try_to_vec::<f32>().expect("f32")[0]);
    let l2 = 1.0 - scalar(relative_l2(y, q)).sqrt();
    let h1 = j.map(|j| 1.0 - scalar(relative_frobenius(jy, j)).sqrt());
    (l2, h1)
}
