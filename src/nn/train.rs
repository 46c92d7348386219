//! Training: Adam with an exponentially decaying learning rate, mini-batches, a validation set,
//! early stopping on the validation loss with the best network kept, a NaN guard, a progress
//! bar and a per-epoch log; and the paper's accuracy metrics.
//!
//! Each epoch minimizes the weighted loss l2_weight · ‖q − φ‖²/‖q‖² + jacobian_weight · (Jacobian
//! term) over mini-batches (see [`super::batch`]); the validation loss is the same weighted sum on
//! the held-out samples, with the MS term evaluated as the full reduced-SVD term.
//!
//! Deterministic given the seed: the sample order of epoch e is drawn from the stream
//! (seed, shuffle, e), the subsampled singular blocks from (seed, subsample, e). With
//! `TrainSettings::resume_dir` the state after every epoch is kept, and an interrupted run
//! continues bit-identically (see [`super::resume`]).

use std::time::Instant;

use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::{index::sample as sample_indices, SliceRandom};

use super::batch::{batch_terms, combine, jacobian_target, scalar};
use super::loss::{JacobianTerm, Loss};
use super::mlp::Mlp;
use super::resume::{self, ResumePoint, ResumeWriter};
use crate::error::{Error, Result};
use crate::rng::{stream, Purpose};

pub use super::batch::{batch_loss, full_batch_loss};
pub use super::samples::{JacobianMetric, MetricDirections, SampleSvd, Samples};
pub use super::settings::{EpochRecord, StopReason, TrainSettings};

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

/// What stays fixed over a training run: the data, their per-sample SVDs, the loss, the
/// settings and the device.
struct Run<'a> {
    train: &'a Samples,
    validation: Option<&'a Samples>,
    train_svd: Option<SampleSvd>,
    validation_svd: Option<SampleSvd>,
    loss: Loss,
    settings: &'a TrainSettings,
    device: &'a Device,
}

impl Run<'_> {
    /// The weighted loss l2_weight · l2 + jacobian_weight · j.
    fn weighted(&self, l2: f64, j: Option<f64>) -> f64 {
        self.loss.l2_weight * l2 + j.map_or(0.0, |j| self.loss.jacobian_weight * j)
    }

    /// The MS loss's singular blocks of epoch e, one per training sample.
    fn blocks(&self, epoch: usize) -> Option<Vec<Vec<usize>>> {
        match (self.loss.jacobian, &self.train_svd) {
            (JacobianTerm::Subsampled { rank, block }, Some(_)) => {
                let mut rng = stream(self.settings.seed, Purpose::Subsample, epoch as u64);
                Some(
                    (0..self.train.count)
                        .map(|_| sample_indices(&mut rng, rank, block.min(rank)).into_vec())
                        .collect(),
                )
            }
            _ => None,
        }
    }

    /// One pass of Adam steps over the batches of `order`; the mean L2 and Jacobian terms of the
    /// batches, or None when a term became non-finite (the network is then that of the last step).
    fn train_epoch(
        &self,
        epoch: usize,
        order: &[usize],
        mut mlp: Mlp,
        optimizer: &mut ModuleOptimizer,
    ) -> (Mlp, Option<(f64, Option<f64>)>) {
        let lr = self.settings.learning_rate_at(epoch);
        let blocks = self.blocks(epoch);
        let (mut sum_l2, mut sum_jac, mut batches) = (0.0, 0.0, 0usize);
        for rows in order.chunks(self.settings.batch_size.max(1)) {
            let (x, q) = self.train.tensors(rows, self.device);
            let row_blocks: Option<Vec<Vec<usize>>> = blocks
                .as_ref()
                .map(|bl| rows.iter().map(|&r| bl[r].clone()).collect());
            let target = jacobian_target(
                self.train,
                self.train_svd.as_ref(),
                self.loss.jacobian,
                rows,
                row_blocks.as_deref(),
                self.device,
            );
            let (l2, jac) = batch_terms(&mlp, x, q, target);
            let (l2v, jacv) = (scalar(l2.clone()), jac.clone().map(scalar));
            if !l2v.is_finite() || jacv.is_some_and(|j| !j.is_finite()) {
                return (mlp, None);
            }
            sum_l2 += l2v;
            sum_jac += jacv.unwrap_or(0.0);
            batches += 1;
            let total = combine((l2, jac), self.loss);
            let grads = GradientsParams::from_grads(total.backward(), &mlp);
            mlp = optimizer.step(lr, mlp, grads);
        }
        let nb = batches.max(1) as f64;
        let terms = (
            sum_l2 / nb,
            self.loss.uses_jacobian().then_some(sum_jac / nb),
        );
        (mlp, Some(terms))
    }

    /// The log line of an epoch: its mean training terms and the validation terms of `mlp`.
    fn record(
        &self,
        epoch: usize,
        mlp: &Mlp,
        (train_l2, train_jacobian): (f64, Option<f64>),
        started: Instant,
    ) -> EpochRecord {
        let (validation_l2, validation_jacobian, validation_loss) = match self.validation {
            Some(v) => {
                let (l2, j) =
                    evaluate(mlp, v, self.validation_svd.as_ref(), self.loss, self.device);
                (Some(l2), j, Some(self.weighted(l2, j)))
            }
            None => (None, None, None),
        };
        EpochRecord {
            epoch,
            learning_rate: self.settings.learning_rate_at(epoch),
            train_l2,
            train_jacobian,
            train_loss: self.weighted(train_l2, train_jacobian),
            validation_l2,
            validation_jacobian,
            validation_loss,
            seconds: started.elapsed().as_secs_f64(),
        }
    }

    /// The state to start from: the resume folder's when it holds this very run (the model
    /// folder's checkpoint is then restored through `on_best`), else `mlp` with a fresh Adam;
    /// and the writer of the resume folder, when the settings name one.
    fn start(
        &self,
        mlp: Mlp,
        on_best: &mut dyn FnMut(&Mlp, &EpochRecord) -> Result<()>,
    ) -> Result<(ResumePoint, Option<ResumeWriter>)> {
        let fresh = |mlp: Mlp| ResumePoint {
            mlp,
            optimizer: AdamConfig::new().init(),
            next_epoch: 0,
            history: Vec::with_capacity(self.settings.epochs),
            best: None,
        };
        let Some(dir) = &self.settings.resume_dir else {
            return Ok((fresh(mlp), None));
        };
        let fingerprint =
            resume::fingerprint(&mlp, self.train, self.validation, self.loss, self.settings);
        let resumed = resume::load(dir, &fingerprint, || mlp.clone())?;
        let resumed_best = resumed.as_ref().and_then(|r| r.best.as_ref().map(|b| b.1));
        let writer = ResumeWriter::new(dir, fingerprint, resumed_best)?;
        let Some(point) = resumed else {
            return Ok((fresh(mlp), Some(writer)));
        };
        eprintln!(
            "resuming training at epoch {} of {} from {}",
            point.next_epoch,
            self.settings.epochs,
            dir.display()
        );
        if let Some((_, epoch, m)) = &point.best {
            if let Some(record) = point.history.iter().find(|r| r.epoch == *epoch) {
                on_best(m, record)?;
            }
        }
        Ok((point, Some(writer)))
    }
}

/// A progress bar over the epochs (hidden unless `settings.progress`), at `first_epoch`.
fn progress_bar(settings: &TrainSettings, first_epoch: usize) -> ProgressBar {
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
    bar.set_position(first_epoch as u64);
    bar
}

/// Advances the bar by one epoch, showing the epoch's loss terms.
fn show_progress(bar: &ProgressBar, record: &EpochRecord) {
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
}

/// Trains `mlp` on `train` with Adam (see the module doc); `device` must be an autodiff device.
/// `on_best` is called with the network each time the validation loss improves (checkpoints).
pub fn train_network(
    mlp: Mlp,
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
    let validation_svd = match (rank, validation) {
        (Some(r), Some(v)) => Some(v.svd(r)?),
        _ => None,
    };
    let run = Run {
        train,
        validation,
        train_svd,
        validation_svd,
        loss,
        settings,
        device,
    };
    let (point, mut writer) = run.start(mlp, on_best)?;
    let ResumePoint {
        mut mlp,
        mut optimizer,
        next_epoch: first_epoch,
        mut history,
        mut best,
    } = point;
    let bar = progress_bar(settings, first_epoch);
    let mut order: Vec<usize> = (0..train.count).collect();
    // each epoch shuffles the previous epoch's order: replay the shuffles of the epochs done
    for epoch in 0..first_epoch {
        order.shuffle(&mut stream(settings.seed, Purpose::Shuffle, epoch as u64));
    }
    let resumed_seconds = history.iter().map(|r| r.seconds).sum();
    let mut stop = StopReason::Completed;
    for epoch in first_epoch..settings.epochs {
        let started = Instant::now();
        order.shuffle(&mut stream(settings.seed, Purpose::Shuffle, epoch as u64));
        let (next, terms) = run.train_epoch(epoch, &order, mlp, &mut optimizer);
        mlp = next;
        let Some(terms) = terms else {
            stop = StopReason::NonFiniteLoss { epoch };
            break;
        };
        let record = run.record(epoch, &mlp, terms, started);
        let score = record.validation_loss.unwrap_or(record.train_loss);
        if !score.is_finite() {
            stop = StopReason::NonFiniteLoss { epoch };
            break;
        }
        show_progress(&bar, &record);
        let improved = best.as_ref().is_none_or(|(s, _, _)| score < *s);
        if improved {
            on_best(&mlp, &record)?;
            best = Some((score, epoch, mlp.clone()));
        }
        history.push(record);
        if let Some(w) = writer.as_mut() {
            let best_score = best.as_ref().map(|b| (b.0, b.1));
            w.save(
                epoch,
                &mlp,
                &optimizer,
                &history,
                best_score,
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
    let (mlp, best_epoch) = match best {
        Some((_, e, m)) => (m, Some(e)),
        None => (mlp, None),
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
