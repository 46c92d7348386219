//! The loss of one batch: the relative L2 term ‖q − φ(x)‖²/‖q‖² and the Jacobian term of a
//! [`Loss`] — the full Jacobian (optionally in a [`JacobianMetric`](super::samples::JacobianMetric)),
//! or the singular directions of each sample's Jacobian SVD (reduced H1, MS).

use burn::tensor::{Device, Tensor, TensorData};

use super::loss::{relative_frobenius, relative_l2, JacobianTerm, Loss};
use super::mlp::{Directions, Mlp};
use super::samples::{gather, MetricDirections, SampleSvd, Samples};

/// The Jacobian target of one batch.
pub(crate) enum JacobianTarget {
    None,
    /// The target [B, out, k] and a metric's directions and scale S [1, out, 1].
    Full(Tensor<3>, Option<(MetricTensor, Tensor<3>)>),
    /// Directions D = V_kᵀ [B, k, in], left vectors U_kᵀ [B, k, out], target diag(Σ_k) [B, k, k].
    Singular(Tensor<3>, Tensor<3>, Tensor<3>),
}

/// The input directions of a metric as a tensor.
pub(crate) enum MetricTensor {
    /// D [k, in], shared by the batch.
    Rows(Tensor<2>),
    /// diag(D) as [1, 1, in].
    Diagonal(Tensor<3>),
}

/// Builds the Jacobian target of a batch; `blocks[i]` selects singular indices of row i (all
/// `rank` of them for the reduced-SVD term).
pub(crate) fn jacobian_target(
    samples: &Samples,
    svd: Option<&SampleSvd>,
    term: JacobianTerm,
    rows: &[usize],
    blocks: Option<&[Vec<usize>]>,
    device: &Device,
) -> JacobianTarget {
    let b = rows.len();
    match (term, svd) {
        (JacobianTerm::None, _) => JacobianTarget::None,
        (JacobianTerm::Full, _) => {
            let j = samples.jacobian.as_ref().expect("checked before training");
            let k = samples.jacobian_columns();
            let target = Tensor::from_data(
                TensorData::new(gather(j, k * samples.output, rows), [b, samples.output, k]),
                device,
            );
            let metric = samples.metric.as_ref().map(|m| {
                let d = match &m.directions {
                    MetricDirections::Rows { d, k } => MetricTensor::Rows(Tensor::from_data(
                        TensorData::new(d.clone(), [*k, samples.input]),
                        device,
                    )),
                    MetricDirections::Diagonal(s) => MetricTensor::Diagonal(Tensor::from_data(
                        TensorData::new(s.clone(), [1, 1, samples.input]),
                        device,
                    )),
                };
                let scale = Tensor::<1>::from_data(
                    TensorData::new(m.output_scale.clone(), [samples.output]),
                    device,
                )
                .reshape([1, samples.output as i64, 1]);
                (d, scale)
            });
            JacobianTarget::Full(target, metric)
        }
        (_, Some(svd)) => {
            let r = svd.rank;
            let all: Vec<usize> = (0..r).collect();
            let pick = |i: usize| -> &[usize] { blocks.map_or(&all[..], |bl| &bl[i]) };
            let k = pick(0).len();
            let (n_in, n_out) = (samples.input, samples.output);
            let mut d = Vec::with_capacity(b * k * n_in);
            let mut ut = Vec::with_capacity(b * k * n_out);
            let mut diag = vec![0.0f32; b * k * k];
            for (i, &row) in rows.iter().enumerate() {
                let idx = pick(i);
                for (c, &kk) in idx.iter().enumerate() {
                    d.extend((0..n_in).map(|p| svd.v[(row * n_in + p) * r + kk]));
                    ut.extend((0..n_out).map(|a| svd.u[(row * n_out + a) * r + kk]));
                    diag[(i * k + c) * k + c] = svd.s[row * r + kk];
                }
            }
            JacobianTarget::Singular(
                Tensor::from_data(TensorData::new(d, [b, k, n_in]), device),
                Tensor::from_data(TensorData::new(ut, [b, k, n_out]), device),
                Tensor::from_data(TensorData::new(diag, [b, k, k]), device),
            )
        }
        (_, None) => unreachable!("SVD computed before training"),
    }
}

/// The two loss terms of one batch (the Jacobian term None when the loss has none).
pub(crate) fn batch_terms(
    mlp: &Mlp,
    x: Tensor<2>,
    q: Tensor<2>,
    target: JacobianTarget,
) -> (Tensor<1>, Option<Tensor<1>>) {
    match target {
        JacobianTarget::None => (relative_l2(mlp.forward(x), q), None),
        JacobianTarget::Full(j, None) => {
            let (y, jy) = mlp.forward_with_jacobian(x);
            (relative_l2(y, q), Some(relative_frobenius(jy, j)))
        }
        JacobianTarget::Full(j, Some((MetricTensor::Rows(d), scale))) => {
            let (y, jd) = mlp.forward_with_directions(x, Some(Directions::Shared(d))); // ∇φ Dᵀ
            (relative_l2(y, q), Some(relative_frobenius(jd * scale, j)))
        }
        JacobianTarget::Full(j, Some((MetricTensor::Diagonal(d), scale))) => {
            let (y, jy) = mlp.forward_with_jacobian(x); // ∇φ, then ∇φ diag(d)
            (
                relative_l2(y, q),
                Some(relative_frobenius(jy * d * scale, j)),
            )
        }
        JacobianTarget::Singular(d, ut, diag) => {
            let (y, jd) = mlp.forward_with_directions(x, Some(Directions::PerSample(d))); // [B, out, k] = ∇f V_k
            let projected = ut.matmul(jd); // U_kᵀ ∇f V_k
            (relative_l2(y, q), Some(relative_frobenius(projected, diag)))
        }
    }
}

/// The loss of one batch with the full Jacobian term (or none); see [`Loss`].
pub fn batch_loss(
    mlp: &Mlp,
    x: Tensor<2>,
    q: Tensor<2>,
    jac: Option<Tensor<3>>,
    loss: Loss,
) -> Tensor<1> {
    let target = match jac {
        Some(j) if loss.uses_jacobian() => JacobianTarget::Full(j, None),
        _ => JacobianTarget::None,
    };
    combine(batch_terms(mlp, x, q, target), loss)
}

/// The loss on all of `samples` as one batch (used by gradient checks); for the MS term,
/// `blocks[i]` are the singular indices of sample i (None: all of them).
pub fn full_batch_loss(
    mlp: &Mlp,
    samples: &Samples,
    svd: Option<&SampleSvd>,
    loss: Loss,
    blocks: Option<&[Vec<usize>]>,
    device: &Device,
) -> Tensor<1> {
    let rows: Vec<usize> = (0..samples.count).collect();
    let (x, q) = samples.tensors(&rows, device);
    let target = jacobian_target(samples, svd, loss.jacobian, &rows, blocks, device);
    combine(batch_terms(mlp, x, q, target), loss)
}

pub(crate) fn combine((l2, jac): (Tensor<1>, Option<Tensor<1>>), loss: Loss) -> Tensor<1> {
    match jac {
        Some(j) => l2 * loss.l2_weight + j * loss.jacobian_weight,
        None => l2 * loss.l2_weight,
    }
}

pub(crate) fn scalar(t: Tensor<1>) -> f64 {
    f64::from(
        t.into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32 scalar")[0],
    )
}
