//! Training: Adam with an exponentially decaying learning rate, mini-batches, a validation set,
//! early stopping on the validation loss with the best network kept, a NaN guard, a progress
//! bar and a per-epoch log; and the paper's accuracy metrics.
//!
//! Deterministic given the seed: the sample order of epoch e is drawn from the stream
//! (seed, shuffle, e), the subsampled singular blocks from (seed, subsample, e). With
//! `TrainSettings::resume_dir` the state after every epoch is kept, and an interrupted run
//! continues bit-identically (see [`super::resume`]).

use std::time::Instant;

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::{index::sample as sample_indices, SliceRandom};

use super::loss::{relative_frobenius, relative_l2, JacobianTerm, Loss};
use super::mlp::{Directions, Mlp};
use super::resume;
use crate::error::{Error, Result};
use crate::rng::{stream, Purpose};

/// Training samples in row-major f32 arrays (network coordinates).
#[derive(Debug, Clone)]
pub struct Samples {
    pub count: usize,
    pub input: usize,
    pub output: usize,
    /// [count, input]
    pub x: Vec<f32>,
    /// [count, output]
    pub q: Vec<f32>,
    /// Jacobian targets [count, output, k], when derivative data are available: ∇q itself
    /// (k = input) without a metric, T_i with a metric (see [`JacobianMetric`]).
    pub jacobian: Option<Vec<f32>>,
    /// The metric the Jacobian term is measured in (None: plain Frobenius of ∇φ).
    pub metric: Option<JacobianMetric>,
}

/// A metric for the Jacobian term: the term compares T_i with S ∇φ Dᵀ, where the rows of D
/// (k × input) are input directions and S = diag(`output_scale`). DIPNet uses it so that its
/// relative Jacobian error is the error of the *full* d_Q × d_M Jacobian in the Frobenius norm
/// (see `ReducedCoordinates::samples_from`).
#[derive(Debug, Clone)]
pub struct JacobianMetric {
    pub directions: MetricDirections,
    /// S, [output].
    pub output_scale: Vec<f32>,
}

/// The input directions D of a [`JacobianMetric`].
#[derive(Debug, Clone, PartialEq)]
pub enum MetricDirections {
    /// D given by its rows, [k, input] row-major.
    Rows { d: Vec<f32>, k: usize },
    /// D = diag(s) (k = input), never formed: S ∇φ D is a column scaling of ∇φ.
    Diagonal(Vec<f32>),
}

impl MetricDirections {
    /// Number of directions k.
    pub fn count(&self) -> usize {
        match self {
            MetricDirections::Rows { k, .. } => *k,
            MetricDirections::Diagonal(s) => s.len(),
        }
    }

    /// Dᵀ v for a vector v of length k (an input-space direction).
    fn transpose_apply(&self, v: impl Fn(usize) -> f64, input: usize) -> Vec<f64> {
        match self {
            MetricDirections::Rows { d, k } => (0..input)
                .map(|b| (0..*k).map(|l| f64::from(d[l * input + b]) * v(l)).sum())
                .collect(),
            MetricDirections::Diagonal(s) => (0..input).map(|b| f64::from(s[b]) * v(b)).collect(),
        }
    }
}

impl Samples {
    /// Columns of a Jacobian target: k with a metric, `input` without.
    pub fn jacobian_columns(&self) -> usize {
        self.metric
            .as_ref()
            .map_or(self.input, |m| m.directions.count())
    }
}

/// Each sample's truncated SVD J_i ≈ U_i Σ_i V_iᵀ (for the reduced H1 and MS losses).
#[derive(Debug, Clone)]
pub struct SampleSvd {
    pub rank: usize,
    /// [count, output, rank] (S U_k with a metric)
    pub u: Vec<f32>,
    /// [count, rank]
    pub s: Vec<f32>,
    /// [count, input, rank] (input-space directions: Dᵀ V_k with a metric)
    pub v: Vec<f32>,
}

fn gather(a: &[f32], width: usize, rows: &[usize]) -> Vec<f32> {
    rows.iter()
        .flat_map(|&r| a[r * width..(r + 1) * width].iter().copied())
        .collect()
}

impl Samples {
    /// The samples at `rows`, in that order.
    pub fn subset(&self, rows: &[usize]) -> Samples {
        Samples {
            count: rows.len(),
            input: self.input,
            output: self.output,
            x: gather(&self.x, self.input, rows),
            q: gather(&self.q, self.output, rows),
            jacobian: self
                .jacobian
                .as_ref()
                .map(|j| gather(j, self.jacobian_columns() * self.output, rows)),
            metric: self.metric.clone(),
        }
    }

    /// A reproducible split into (training, validation) with `fraction` of the samples (at least
    /// one when fraction > 0) held out.
    pub fn split(&self, fraction: f64, seed: u64) -> (Samples, Option<Samples>) {
        let held = ((self.count as f64 * fraction).round() as usize).min(self.count - 1);
        let held = if fraction > 0.0 { held.max(1) } else { 0 };
        if held == 0 {
            return (self.clone(), None);
        }
        let mut order: Vec<usize> = (0..self.count).collect();
        order.shuffle(&mut stream(seed, Purpose::Split, 0));
        let (val, train) = order.split_at(held);
        (self.subset(train), Some(self.subset(val)))
    }

    /// Each sample's rank-`rank` SVD of its Jacobian. Asking for more than min(output, input)
    /// is an error (never a silent truncation).
    pub fn svd(&self, rank: usize) -> Result<SampleSvd> {
        let jac = self.jacobian.as_ref().ok_or_else(|| {
            Error::invalid(
                "training data",
                "jacobian",
                "Jacobian data (the reduced-H1 and MS losses need them)",
                "none",
            )
        })?;
        let (n_out, n_in) = (self.output, self.jacobian_columns());
        if rank == 0 || rank > n_out.min(n_in) {
            return Err(Error::invalid(
                "loss",
                "rank",
                format!(
                    "a Jacobian SVD rank between 1 and min(r_Q, r_M) = {}",
                    n_out.min(n_in)
                ),
                rank,
            ));
        }
        use rayon::prelude::*;
        let per_sample: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = (0..self.count)
            .into_par_iter()
            .map(|i| {
                let j = &jac[i * n_out * n_in..(i + 1) * n_out * n_in];
                let m = faer::Mat::from_fn(n_out, n_in, |a, b| f64::from(j[a * n_in + b]));
                let svd = m.thin_svd().expect("SVD of a finite matrix");
                let (u, s, v) = (svd.U(), svd.S().column_vector(), svd.V());
                // with a metric, S U_k and Dᵀ V_k: then U_kᵀ (S ∇φ Dᵀ) V_k = (S U_k)ᵀ ∇φ (Dᵀ V_k)
                let mut uu = Vec::with_capacity(n_out * rank);
                for a in 0..n_out {
                    let scale = self
                        .metric
                        .as_ref()
                        .map_or(1.0, |m| f64::from(m.output_scale[a]));
                    uu.extend((0..rank).map(|k| (scale * u[(a, k)]) as f32));
                }
                let columns: Vec<Vec<f64>> = (0..rank)
                    .map(|k| match &self.metric {
                        None => (0..self.input).map(|b| v[(b, k)]).collect(),
                        Some(m) => m.directions.transpose_apply(|l| v[(l, k)], self.input),
                    })
                    .collect();
                let mut vv = Vec::with_capacity(self.input * rank);
                for b in 0..self.input {
                    vv.extend(columns.iter().map(|col| col[b] as f32));
                }
                (uu, (0..rank).map(|k| s[k] as f32).collect(), vv)
            })
            .collect();
        let mut out = SampleSvd {
            rank,
            u: Vec::with_capacity(self.count * n_out * rank),
            s: Vec::with_capacity(self.count * rank),
            v: Vec::with_capacity(self.count * self.input * rank),
        };
        for (u, s, v) in per_sample {
            out.u.extend(u);
            out.s.extend(s);
            out.v.extend(v);
        }
        Ok(out)
    }

    fn tensors(&self, rows: &[usize], device: &Device) -> (Tensor<2>, Tensor<2>) {
        let b = rows.len();
        (
            Tensor::from_data(
                TensorData::new(gather(&self.x, self.input, rows), [b, self.input]),
                device,
            ),
            Tensor::from_data(
                TensorData::new(gather(&self.q, self.output, rows), [b, self.output]),
                device,
            ),
        )
    }
}

/// The Jacobian target of one batch.
enum JacobianTarget {
    None,
    /// The target [B, out, k] and a metric's directions and scale S [1, out, 1].
    Full(Tensor<3>, Option<(MetricTensor, Tensor<3>)>),
    /// Directions D = V_kᵀ [B, k, in], left vectors U_kᵀ [B, k, out], target diag(Σ_k) [B, k, k].
    Singular(Tensor<3>, Tensor<3>, Tensor<3>),
}

/// The input directions of a metric as a tensor.
enum MetricTensor {
    /// D [k, in], shared by the batch.
    Rows(Tensor<2>),
    /// diag(D) as [1, 1, in].
    Diagonal(Tensor<3>),
}

/// Builds the Jacobian target of a batch; `blocks[i]` selects singular indices of row i (all
/// `rank` of them for the reduced-SVD term).
fn jacobian_target(
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
fn batch_terms(
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

fn combine((l2, jac): (Tensor<1>, Option<Tensor<1>>), loss: Loss) -> Tensor<1> {
    match jac {
        Some(j) => l2 * loss.l2_weight + j * loss.jacobian_weight,
        None => l2 * loss.l2_weight,
    }
}

fn scalar(t: Tensor<1>) -> f64 {
    f64::from(
        t.into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32 scalar")[0],
    )
}

/// Training settings.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainSettings {
    pub epochs: usize,
    pub batch_size: usize,
    /// Learning rate of the first epoch.
    pub learning_rate: f64,
    /// Learning rate of the last epoch; the rate decays geometrically in between.
    pub final_learning_rate: f64,
    /// Stop when the validation loss has not improved for this many epochs (None: never).
    pub patience: Option<usize>,
    pub seed: u64,
    /// Show a progress bar on stderr.
    #[serde(skip)]
    pub progress: bool,
    /// Folder of the mid-run state: written after every epoch, resumed from when it belongs to
    /// the same run, removed when training ends (see [`super::resume`]).
    #[serde(skip)]
    pub resume_dir: Option<std::path::PathBuf>,
}

impl TrainSettings {
    /// Constant learning rate, no early stopping, no progress bar.
    pub fn adam(epochs: usize, batch_size: usize, learning_rate: f64, seed: u64) -> Self {
        TrainSettings {
            epochs,
            batch_size,
            learning_rate,
            final_learning_rate: learning_rate,
            patience: None,
            seed,
            progress: false,
            resume_dir: None,
        }
    }

    /// The learning rate of epoch e (geometric interpolation).
    pub fn learning_rate_at(&self, epoch: usize) -> f64 {
        if self.epochs <= 1 {
            return self.learning_rate;
        }
        let t = epoch as f64 / (self.epochs - 1) as f64;
        self.learning_rate * (self.final_learning_rate / self.learning_rate).powf(t)
    }
}

/// One line of the training log.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub learning_rate: f64,
    /// Mean over batches of the L2 and Jacobian terms and of the weighted loss.
    pub train_l2: f64,
    pub train_jacobian: Option<f64>,
    pub train_loss: f64,
    pub validation_l2: Option<f64>,
    pub validation_jacobian: Option<f64>,
    pub validation_loss: Option<f64>,
    pub seconds: f64,
}

/// Why training stopped.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    Completed,
    EarlyStopping,
    /// The loss became NaN or infinite in this epoch; the best network so far is kept.
    NonFiniteLoss {
        epoch: usize,
    },
}

/// The result of training: the best network (lowest validation loss, or the last one without a
/// validation set) and the log.
pub struct TrainOutcome {
    pub mlp: Mlp,
    pub history: Vec<EpochRecord>,
    pub best_epoch: Option<usize>,
    pub stop: StopReason,
    /// Seconds of the epochs run before an interruption this run resumed from (0 when fresh).
    pub resumed_seconds: f64,
}

/// Mean loss terms over `samples` in batches (no weight update). The MS term is evaluated as
/// the full reduced-SVD term.
fn evaluate(
    mlp: &Mlp,
    samples: &Samples,
    svd: Option<&SampleSvd>,
    loss: Loss,
    device: &Device,
) -> (f64, Option<f64>) {
    let term = match loss.jacobian {
        JacobianTerm::Subsampled { rank, .. } => JacobianTerm::ReducedSvd { rank },
        t => t,
    };
    let (mut l2, mut jac, mut n) = (0.0, 0.0, 0usize);
    let rows: Vec<usize> = (0..samples.count).collect();
    for chunk in rows.chunks(256) {
        let (x, q) = samples.tensors(chunk, device);
        let target = jacobian_target(samples, svd, term, chunk, None, device);
        let (a, b) = batch_terms(mlp, x, q, target);
        l2 += scalar(a) * chunk.len() as f64;
        jac += b.map_or(0.0, scalar) * chunk.len() as f64;
        n += chunk.len();
    }
    let n = n.max(1) as f64;
    (l2 / n, loss.uses_jacobian().then_some(jac / n))
}

/// Trains `mlp` on `train` with Adam (see the module doc); `device` must be an autodiff device.
/// `on_best` is called with the network each time the validation loss improves (checkpoints).
pub fn train_network(
    mut mlp: Mlp,
    train: &Samples,
    validation: Option<&Samples>,
    loss: Loss,
    settings: &TrainSettings,
    device: &Device,
    on_best: &mut dyn FnMut(&Mlp, &EpochRecord) -> Result<()>,
) -> Result<TrainOutcome> {
    if loss.uses_jacobian() && train.jacobian.is_none() {
        return Err(Error::invalid(
            "training data",
            "jacobian",
            format!("Jacobian data for the {} loss", loss.jacobian.name()),
            "none (use --loss l2, or generate with --jacobian full|projected)",
        ));
    }
    let rank = loss.jacobian.svd_rank().filter(|_| loss.uses_jacobian());
    let train_svd = rank.map(|r| train.svd(r)).transpose()?;
    let val_svd = match (rank, validation) {
        (Some(r), Some(v)) => Some(v.svd(r)?),
        _ => None,
    };
    let mut optimizer = AdamConfig::new().init();
    let mut history: Vec<EpochRecord> = Vec::with_capacity(settings.epochs);
    let mut order: Vec<usize> = (0..train.count).collect();
    let mut best: Option<(f64, usize, Mlp)> = None;
    let mut first_epoch = 0;
    let mut writer = None;
    if let Some(dir) = &settings.resume_dir {
        let fingerprint = resume::fingerprint(&mlp, train, validation, loss, settings);
        let template = || mlp.clone();
        let resumed = resume::load(dir, &fingerprint, template)?;
        let resumed_best = resumed.as_ref().and_then(|r| r.best.as_ref().map(|b| b.1));
        if let Some(point) = resumed {
            eprintln!(
                "resuming training at epoch {} of {} from {}",
                point.next_epoch,
                settings.epochs,
                dir.display()
            );
            mlp = point.mlp;
            optimizer = point.optimizer;
            first_epoch = point.next_epoch;
            history = point.history;
            best = point.best;
            // the model folder's checkpoint is the best network so far
            if let Some((_, epoch, m)) = &best {
                if let Some(record) = history.iter().find(|r| r.epoch == *epoch) {
                    on_best(m, record)?;
                }
            }
        }
        writer = Some(resume::ResumeWriter::new(dir, fingerprint, resumed_best)?);
    }
    let bar = if settings.progress {
        let bar = ProgressBar::new(settings.epochs as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "training {bar:30} {pos}/{len} epochs [{elapsed}<{eta}] {msg}",
            )
            .expect("valid template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut stop = StopReason::Completed;
    bar.set_position(first_epoch as u64);
    // each epoch shuffles the previous epoch's order: replay the shuffles of the epochs done
    for epoch in 0..first_epoch {
        order.shuffle(&mut stream(settings.seed, Purpose::Shuffle, epoch as u64));
    }
    let resumed_seconds = history.iter().map(|r| r.seconds).sum();
    for epoch in first_epoch..settings.epochs {
        let started = Instant::now();
        let lr = settings.learning_rate_at(epoch);
        order.shuffle(&mut stream(settings.seed, Purpose::Shuffle, epoch as u64));
        let blocks: Option<Vec<Vec<usize>>> = match (loss.jacobian, &train_svd) {
            (JacobianTerm::Subsampled { rank, block }, Some(_)) => {
                let mut rng = stream(settings.seed, Purpose::Subsample, epoch as u64);
                Some(
                    (0..train.count)
                        .map(|_| sample_indices(&mut rng, rank, block.min(rank)).into_vec())
                        .collect(),
                )
            }
            _ => None,
        };
        let (mut sum_l2, mut sum_jac, mut batches) = (0.0, 0.0, 0usize);
        let mut non_finite = false;
        for rows in order.chunks(settings.batch_size.max(1)) {
            let (x, q) = train.tensors(rows, device);
            let row_blocks: Option<Vec<Vec<usize>>> = blocks
                .as_ref()
                .map(|bl| rows.iter().map(|&r| bl[r].clone()).collect());
            let target = jacobian_target(
                train,
                train_svd.as_ref(),
                loss.jacobian,
                rows,
                row_blocks.as_deref(),
                device,
            );
            let (l2, jac) = batch_terms(&mlp, x, q, target);
            let (l2v, jacv) = (scalar(l2.clone()), jac.clone().map(scalar));
            if !l2v.is_finite() || jacv.is_some_and(|j| !j.is_finite()) {
                non_finite = true;
                break;
            }
            sum_l2 += l2v;
            sum_jac += jacv.unwrap_or(0.0);
            batches += 1;
            let total = combine((l2, jac), loss);
            let grads = GradientsParams::from_grads(total.backward(), &mlp);
            mlp = optimizer.step(lr, mlp, grads);
        }
        if non_finite {
            stop = StopReason::NonFiniteLoss { epoch };
            break;
        }
        let nb = batches.max(1) as f64;
        let (train_l2, train_jacobian) =
            (sum_l2 / nb, loss.uses_jacobian().then_some(sum_jac / nb));
        let weighted = |l2: f64, j: Option<f64>| {
            loss.l2_weight * l2 + j.map_or(0.0, |j| loss.jacobian_weight * j)
        };
        let (validation_l2, validation_jacobian, validation_loss) = match validation {
            Some(v) => {
                let (l2, j) = evaluate(&mlp, v, val_svd.as_ref(), loss, device);
                (Some(l2), j, Some(weighted(l2, j)))
            }
            None => (None, None, None),
        };
        let record = EpochRecord {
            epoch,
            learning_rate: lr,
            train_l2,
            train_jacobian,
            train_loss: weighted(train_l2, train_jacobian),
            validation_l2,
            validation_jacobian,
            validation_loss,
            seconds: started.elapsed().as_secs_f64(),
        };
        let score = record.validation_loss.unwrap_or(record.train_loss);
        if !score.is_finite() {
            stop = StopReason::NonFiniteLoss { epoch };
            break;
        }
        bar.set_message(format!(
            "L2 {:.2e}{} val {}",
            record.train_l2,
            record
                .train_jacobian
                .map_or(String::new(), |j| format!(" Jac {j:.2e}")),
            record
                .validation_loss
                .map_or("-".into(), |v| format!("{v:.2e}")),
        ));
        bar.inc(1);
        let improved = best.as_ref().is_none_or(|(s, _, _)| score < *s);
        if improved {
            on_best(&mlp, &record)?;
            best = Some((score, epoch, mlp.clone()));
        }
        history.push(record);
        if let Some(w) = writer.as_mut() {
            w.save(
                epoch,
                &mlp,
                &optimizer,
                &history,
                best.as_ref().map(|b| (b.0, b.1)),
                improved.then_some(&mlp),
            )?;
        }
        if let (Some(patience), Some((_, best_epoch, _))) = (settings.patience, &best) {
            if validation.is_some() && epoch >= best_epoch + patience {
                stop = StopReason::EarlyStopping;
                break;
            }
        }
    }
    bar.finish_and_clear();
    if let Some(w) = writer {
        w.finish();
    }
    let (mlp, best_epoch) = match (best, &stop) {
        (Some((_, e, m)), _) => (m, Some(e)),
        (None, _) => (mlp, None),
    };
    Ok(TrainOutcome {
        mlp,
        history,
        best_epoch,
        stop,
        resumed_seconds,
    })
}

/// Trains without a validation set; returns the network of the epoch with the lowest mean
/// batch loss and the mean batch loss of each epoch. A non-finite loss is an error.
pub fn train(
    mlp: Mlp,
    samples: &Samples,
    loss: Loss,
    settings: &TrainSettings,
    device: &Device,
) -> Result<(Mlp, Vec<f64>)> {
    let outcome = train_network(mlp, samples, None, loss, settings, device, &mut |_, _| {
        Ok(())
    })?;
    if let StopReason::NonFiniteLoss { epoch } = outcome.stop {
        return Err(Error::numerical(
            "training",
            format!("the loss became non-finite in epoch {epoch}"),
        ));
    }
    let losses = outcome.history.iter().map(|r| r.train_loss).collect();
    Ok((outcome.mlp, losses))
}

/// The paper's accuracies (as its code computes them) in network coordinates: `l2` = 1 −
/// sqrt(E[‖q − f‖²/‖q‖²]) and `h1` = 1 − sqrt(E[‖∇q − ∇f‖²_F/‖∇q‖²_F]) (None without
/// derivative data).
pub fn accuracies(mlp: &Mlp, samples: &Samples, device: &Device) -> (f64, Option<f64>) {
    let loss = if samples.jacobian.is_some() {
        Loss::H1
    } else {
        Loss::L2
    };
    let (l2, jac) = evaluate(mlp, samples, None, loss, device);
    (1.0 - l2.sqrt(), jac.map(|j| 1.0 - j.sqrt()))
}
