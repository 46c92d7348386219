//! Training a surrogate into a model folder: a DIPNet f(m) = q̄ + U ψ(Eᵀ(m − m̄)) on the first
//! r_M vectors of an input basis, the generic network on all d_M coordinates, or (with
//! `control_data`) an MR-DINO on (m, z) ↦ u (see [`crate::nn::control`]). The model folder
//! (model.json, weights.safetensors, training_log.json; the best network checkpointed while
//! training) is the product and is written here; plots and summaries are the caller's.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::coordinates::{
    device, jacobian_data, jacobian_term, load_basis, loss_of, reduced_samples, ArchitectureName,
    DeviceName, InputChoice, LossName,
};
use crate::bases::Basis;
use crate::data::{Dataset, JacobianKind};
use crate::error::{Error, Result};
use crate::io::{checksum, write_atomic};
use crate::nn::anchor::Anchor;
use crate::nn::model_file::{
    weight_bytes, Architecture, TrainedFor, TrainingRecord, IDENTITY_BASIS,
};
use crate::nn::train::{train_network, EpochRecord, Samples, StopReason, TrainSettings};
use crate::nn::{DipNet, Loss, Mlp, MlpShape, ModelRecord, Surrogate};
use crate::problem::Problem;

/// What `dino train` is asked to do (the CLI's options, one field each).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Problem file (TOML) the data were generated for, and an optional mesh override.
    pub problem: PathBuf,
    pub mesh: Option<i64>,
    /// Training data folder(s) from `dino generate`.
    pub data: Vec<PathBuf>,
    /// A `dino generate --control` folder: train an MR-DINO instead.
    pub control_data: Option<PathBuf>,
    pub architecture: ArchitectureName,
    /// Input basis folder from `dino bases` (DIPNets and MR-DINOs).
    pub basis: Option<PathBuf>,
    /// r_M (default: all basis vectors) and r_Q (default: min(50, d_Q); the POD rank of the
    /// control data for an MR-DINO).
    pub input_rank: Option<usize>,
    pub output_rank: Option<usize>,
    pub loss: LossName,
    /// Rank of the per-sample Jacobian SVD (default min(r_Q, r_M)) and the MS block size.
    pub svd_rank: Option<usize>,
    pub ms_block: usize,
    /// Weight of the Jacobian term (the L2 term has weight 1).
    pub jacobian_weight: f64,
    /// Hidden layer width and count of φ.
    pub width: usize,
    pub depth: usize,
    pub epochs: usize,
    pub batch_size: usize,
    /// Learning rate of the first and the last epoch (default lr / 10; geometric decay).
    pub lr: f64,
    pub lr_final: Option<f64>,
    /// Fraction held out for validation, and the early-stopping patience in epochs.
    pub validation: f64,
    pub patience: usize,
    pub seed: u64,
    /// Continue from this model folder's weights and coordinates.
    pub init: Option<PathBuf>,
    /// Anchor the surrogate at the PDE's linearization at this parameter (.npy).
    pub anchor: Option<PathBuf>,
    /// Test data evaluated after training (metrics recorded in model.json).
    pub test_data: Vec<PathBuf>,
    pub device: DeviceName,
    /// Output model folder.
    pub out: PathBuf,
    /// The command line recorded in model.json.
    pub command: String,
}

/// What a training run produced: the model folder's record (with its training record and test
/// metrics) and the training log.
#[derive(Debug, Clone, Serialize)]
pub struct TrainOutcome {
    /// The model folder.
    pub out: PathBuf,
    /// The contents of model.json.
    pub record: ModelRecord,
    pub history: Vec<EpochRecord>,
    pub best_epoch: Option<usize>,
    pub stop: StopReason,
    /// Seconds of this run.
    pub wall_s: f64,
}

/// Whether a run that used all its epochs stopped while the validation loss still fell: the best
/// validation loss of its last fifth is at least 1% below the best of the first four fifths.
/// Returns that relative drop.
pub fn still_improving(outcome: &TrainOutcome) -> Option<f64> {
    if !matches!(outcome.stop, StopReason::Completed) {
        return None;
    }
    let losses: Vec<f64> = outcome
        .history
        .iter()
        .map(|r| r.validation_loss)
        .collect::<Option<_>>()?;
    let n = losses.len();
    if n < 10 {
        return None;
    }
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let drop = 1.0 - min(&losses[4 * n / 5..]) / min(&losses[..4 * n / 5]);
    (drop >= 0.01).then_some(drop)
}

fn positive(field: &str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            "command line",
            field,
            "a positive number",
            value,
        ))
    }
}

/// Refuses settings no run can use.
fn validate(config: &TrainConfig) -> Result<()> {
    for (field, v) in [
        ("--lr", config.lr),
        ("--jacobian-weight", config.jacobian_weight),
    ] {
        positive(field, v)?;
    }
    if !(0.0..1.0).contains(&config.validation) {
        return Err(Error::invalid(
            "command line",
            "--validation",
            "a fraction in [0, 1)",
            config.validation,
        ));
    }
    for (field, v) in [
        ("--epochs", config.epochs),
        ("--batch-size", config.batch_size),
        ("--width", config.width),
    ] {
        if v == 0 {
            return Err(Error::invalid(
                "command line",
                field,
                "a positive integer",
                v,
            ));
        }
    }
    Ok(())
}

/// The input basis: required for DIPNets and MR-DINOs, refused for the generic network.
fn basis_of(config: &TrainConfig, problem: &Problem) -> Result<Option<Basis>> {
    match (&config.basis, config.architecture, &config.control_data) {
        (Some(dir), ArchitectureName::Dipnet, _) | (Some(dir), _, Some(_)) => {
            Ok(Some(load_basis(dir, problem)?))
        }
        (None, ArchitectureName::Dipnet, _) | (None, _, Some(_)) => Err(Error::invalid(
            "command line",
            "--basis",
            "an input basis folder from `dino bases` (DIPNets and MR-DINOs need one)",
            "none",
        )),
        (Some(_), ArchitectureName::Generic, None) => Err(Error::invalid(
            "command line",
            "--basis",
            "no basis: the generic network takes every coordinate of m",
            "a basis",
        )),
        (None, ArchitectureName::Generic, None) => Ok(None),
    }
}

/// Trains the configured network into `config.out`.
pub fn run(config: &TrainConfig) -> Result<TrainOutcome> {
    let started = Instant::now();
    let problem = super::inputs::load_problem(&config.problem, config.mesh)?;
    validate(config)?;
    let device = device(config.device)?.autodiff();
    let basis = basis_of(config, &problem)?;
    if let (Some(dir), Some(basis)) = (&config.control_data, &basis) {
        return super::train_control::run(config, &problem, dir, basis, device, started);
    }
    let mut data = super::inputs::load_data_for(&problem, &config.data)?;
    let anchor = match &config.anchor {
        Some(path) => Some(anchor_data(&mut data, path, &problem, basis.as_ref())?),
        None => None,
    };
    let input = input_choice(config, &data, basis.as_ref())?;
    train_network_on(config, &problem, &data, input, anchor, &device, started)
}

/// Anchors the data at the PDE's linearization at the parameter in `path`: the outputs and
/// Jacobians become the residuals q − q(m₀) − J(m₀)(m − m₀) and J − J(m₀).
fn anchor_data(
    data: &mut Dataset,
    path: &Path,
    problem: &Problem,
    basis: Option<&Basis>,
) -> Result<Anchor> {
    let point = crate::io::npy::read_vector(path, data.m.ncols(), "--anchor")?;
    let anchor = Anchor::of(problem.model()?.as_ref(), &point)?;
    let projection = match data.manifest.jacobian {
        JacobianKind::Projected => basis.map(|b| &b.encoder),
        _ => None,
    };
    data.q = anchor.residual_outputs(&data.m, &data.q);
    data.jacobian = data
        .jacobian
        .as_ref()
        .map(|j| anchor.residual_jacobians(j, projection));
    Ok(anchor)
}

/// The input side: the first r_M basis vectors, or the identity for the generic network.
fn input_choice<'a>(
    config: &'a TrainConfig,
    data: &Dataset,
    basis: Option<&'a Basis>,
) -> Result<InputChoice<'a>> {
    if let (Some(basis), Some(dir)) = (basis, &config.basis) {
        let r_m = config.input_rank.unwrap_or(basis.info.rank);
        if r_m == 0 || r_m > basis.info.rank {
            return Err(Error::invalid(
                "command line",
                "--input-rank",
                format!("between 1 and the basis rank {}", basis.info.rank),
                r_m,
            ));
        }
        return Ok(InputChoice::Basis {
            basis,
            dir,
            rank: r_m,
        });
    }
    if let Some(r) = config.input_rank.filter(|&r| r != data.m.ncols()) {
        return Err(Error::invalid(
            "command line",
            "--input-rank",
            format!(
                "d_M = {} (the generic network takes every coordinate)",
                data.m.ncols()
            ),
            r,
        ));
    }
    Ok(InputChoice::Identity)
}

/// The `--init` model, checked against the problem and the ranks r_M-r_Q of this run.
fn init_model(
    config: &TrainConfig,
    problem: &Problem,
    ranks: (usize, usize),
) -> Result<Option<Surrogate>> {
    let Some(dir) = &config.init else {
        return Ok(None);
    };
    let s = Surrogate::load(dir)?;
    s.check_problem(problem, dir)?;
    let rc = &s.net.coordinates;
    let theirs = (rc.input_basis.rank(), rc.output_basis.ncols());
    if theirs != ranks {
        return Err(Error::invalid(
            "command line",
            "--init",
            format!("a model with ranks {}-{}", ranks.0, ranks.1),
            format!("{}-{}", theirs.0, theirs.1),
        ));
    }
    Ok(Some(s))
}

/// Trains a DIPNet or the generic network on `data` (already anchored) and saves the model.
fn train_network_on(
    config: &TrainConfig,
    problem: &Problem,
    data: &Dataset,
    input: InputChoice<'_>,
    anchor: Option<Anchor>,
    device: &burn::tensor::Device,
    started: Instant,
) -> Result<TrainOutcome> {
    let d_q = data.q.ncols();
    let r_q = config.output_rank.unwrap_or(d_q.min(50));
    let with_jacobians = config.loss != LossName::L2;
    let (mut coords, mut samples, output_kind) = reduced_samples(data, input, r_q, with_jacobians)?;
    let r_m = coords.input_basis.rank();
    let init = init_model(config, problem, (r_m, r_q))?;
    if let Some(s) = &init {
        // the initial network's own coordinates, so that its weights mean the same thing
        coords = s.net.coordinates.clone();
        let jacobians = if with_jacobians {
            jacobian_data(data, input)?
        } else {
            None
        };
        samples = coords.samples_from(&data.m, &data.q, jacobians);
    }
    let svd_rank = config.svd_rank.unwrap_or(r_q.min(r_m));
    let term = jacobian_term(config.loss, svd_rank, config.ms_block);
    let loss = loss_of(term, config.jacobian_weight);
    let (train_set, validation) = samples.split(config.validation, config.seed);
    drop(samples); // the split holds copies (full Jacobian targets: 3.3 GB at N = 4096)
    let settings = train_settings(config)?;
    let shape = MlpShape {
        input: r_m,
        width: config.width,
        depth: config.depth,
        output: r_q,
    };
    let kind = config.architecture.kind();
    let input_basis = match input {
        InputChoice::Basis { basis, .. } => basis.info.kind.name().into(),
        InputChoice::Identity => IDENTITY_BASIS.into(),
    };
    let architecture = Architecture {
        kind: kind.into(),
        mlp: shape,
        input_basis,
        output_basis: output_kind.into(),
    };
    let mut record = ModelRecord::new(architecture, TrainedFor::new(problem, data.m.ncols(), d_q)?);
    let mlp = match (&init, &config.init) {
        (Some(s), Some(dir)) => initial_weights(s, dir, kind, shape, device)?,
        _ => Mlp::new(shape, config.seed, device),
    };
    Surrogate::save_anchored(&mlp, &record, &coords, anchor.as_ref(), &config.out)?;
    let name = match config.architecture {
        ArchitectureName::Dipnet => format!("DIPNet {r_m}-{r_q}"),
        ArchitectureName::Generic => format!("generic network {r_m} → {r_q}"),
    };
    let run = Training {
        train_set: &train_set,
        validation: validation.as_ref(),
        loss,
        settings: &settings,
        device,
        out: &config.out,
    };
    run.announce(&format!(
        "{name} ({} × {} softplus)",
        config.depth, config.width
    ));
    let outcome = run.train(mlp)?;
    let init_wall_s = init
        .as_ref()
        .and_then(|s| s.record.training.as_ref())
        .map_or(0.0, |t| t.wall_s);
    let data_names = config
        .data
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    record.training = Some(run.record(
        &outcome,
        config,
        data_names,
        started,
        init_wall_s,
        data.manifest.cost.wall_s,
        None,
    ));
    let mut surrogate = Surrogate {
        net: DipNet::new(&outcome.mlp, coords.clone()),
        record,
        anchor,
    };
    if !config.test_data.is_empty() {
        let test = super::inputs::load_data_for(problem, &config.test_data)?;
        let model = problem.model()?;
        let metrics = super::eval::metrics_on(&surrogate, &test, model.as_ref())?;
        surrogate.record.test_metrics = Some(metrics);
    }
    Surrogate::save_anchored(
        &outcome.mlp,
        &surrogate.record,
        &coords,
        surrogate.anchor.as_ref(),
        &config.out,
    )?;
    Ok(finished(outcome, surrogate.record, config, started))
}

/// Adam settings of a config (final learning rate lr/10 unless given), resumable in
/// `out/resume`.
pub(crate) fn train_settings(config: &TrainConfig) -> Result<TrainSettings> {
    let settings = TrainSettings {
        epochs: config.epochs,
        batch_size: config.batch_size,
        learning_rate: config.lr,
        final_learning_rate: config.lr_final.unwrap_or(config.lr / 10.0),
        patience: Some(config.patience),
        seed: config.seed,
        progress: true,
        resume_dir: Some(config.out.join("resume")),
    };
    positive("--lr-final", settings.final_learning_rate)?;
    Ok(settings)
}

/// The weights of an `--init` model, which must be of `kind` with the MLP `shape` of this run.
pub(crate) fn initial_weights(
    init: &Surrogate,
    dir: &Path,
    kind: &str,
    shape: MlpShape,
    device: &burn::tensor::Device,
) -> Result<Mlp> {
    let arch = &init.record.architecture;
    let file = dir.join("model.json").display().to_string();
    if arch.kind != kind {
        return Err(Error::invalid(
            file,
            "architecture.kind",
            format!("a {kind} (the kind of network this run trains)"),
            &arch.kind,
        ));
    }
    if arch.mlp != shape {
        return Err(Error::invalid(
            file,
            "architecture.mlp",
            format!("{shape:?} (--width / --depth / ranks of this run)"),
            format!("{:?}", arch.mlp),
        ));
    }
    let path = dir.join("weights.safetensors");
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    crate::nn::model_file::load_weights(shape, bytes, &path, device)
}

/// One training run into a model folder: samples, loss, settings and where checkpoints go.
pub(crate) struct Training<'a> {
    pub train_set: &'a Samples,
    pub validation: Option<&'a Samples>,
    pub loss: Loss,
    pub settings: &'a TrainSettings,
    pub device: &'a burn::tensor::Device,
    pub out: &'a Path,
}

impl Training<'_> {
    /// Says what is trained (`what`), with which loss, on how many samples.
    pub fn announce(&self, what: &str) {
        eprintln!(
            "training {what} with the {} loss on {} samples ({} for validation)",
            self.loss.jacobian.name(),
            self.train_set.count,
            self.validation.map_or(0, |v| v.count)
        );
    }

    /// Trains with the best network checkpointed into the model folder and writes the log.
    pub fn train(&self, mlp: Mlp) -> Result<crate::nn::train::TrainOutcome> {
        let mut checkpoint = |mlp: &Mlp, _: &EpochRecord| checkpoint_weights(mlp, self.out);
        let outcome = train_network(
            mlp,
            self.train_set,
            self.validation,
            self.loss,
            self.settings,
            self.device,
            &mut checkpoint,
        )?;
        let text = serde_json::to_string_pretty(&outcome.history).expect("serializable log");
        write_atomic(self.out.join("training_log.json"), |w| {
            w.write_all(text.as_bytes())
        })?;
        Ok(outcome)
    }

    /// The training record of model.json; `wall_s` is cumulative over `--init` stages (the
    /// offline cost of the final model).
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        outcome: &crate::nn::train::TrainOutcome,
        config: &TrainConfig,
        data: Vec<String>,
        started: Instant,
        init_wall_s: f64,
        data_wall_s: f64,
        control_region: Option<crate::data::ControlRegion>,
    ) -> TrainingRecord {
        TrainingRecord {
            loss: self.loss,
            settings: self.settings.clone(),
            data,
            training_samples: self.train_set.count,
            validation_samples: self.validation.map_or(0, |v| v.count),
            epochs_run: outcome.history.len(),
            best_epoch: outcome.best_epoch,
            stop: outcome.stop.clone(),
            wall_s: started.elapsed().as_secs_f64() + outcome.resumed_seconds + init_wall_s,
            data_wall_s,
            command: config.command.clone(),
            control_region,
        }
    }
}

/// The outcome of a finished run whose model.json holds `record`.
pub(crate) fn finished(
    outcome: crate::nn::train::TrainOutcome,
    record: ModelRecord,
    config: &TrainConfig,
    started: Instant,
) -> TrainOutcome {
    TrainOutcome {
        out: config.out.clone(),
        record,
        history: outcome.history,
        best_epoch: outcome.best_epoch,
        stop: outcome.stop,
        wall_s: started.elapsed().as_secs_f64(),
    }
}

/// The best network so far replaces weights.safetensors (and its checksum in model.json).
fn checkpoint_weights(mlp: &Mlp, out: &Path) -> Result<()> {
    let bytes = weight_bytes(mlp, out)?;
    write_atomic(out.join("weights.safetensors"), |w| w.write_all(&bytes))?;
    let model_json = out.join("model.json");
    let text = std::fs::read_to_string(&model_json).map_err(|e| Error::io(&model_json, e))?;
    let mut saved: ModelRecord =
        serde_json::from_str(&text).map_err(|e| Error::parse(&model_json, e))?;
    saved
        .files
        .insert("weights.safetensors".into(), checksum::hex(&bytes));
    let text = serde_json::to_string_pretty(&saved).expect("serializable");
    write_atomic(&model_json, |w| w.write_all(text.as_bytes()))
}
