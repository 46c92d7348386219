//! `dino train` and `dino eval`: a DIPNet surrogate from a data set and an input basis, and its
//! test accuracies.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};
use ndarray::Array2;

use crate::bases::Basis;
use crate::data::{Dataset, JacobianKind};
use crate::error::{Error, Result};
use crate::io::{checksum, write_atomic};
use crate::nn::anchor::Anchor;
use crate::nn::dipnet::InputBasis;
use crate::nn::evaluate::{test_metrics, TestJacobians};
use crate::nn::model_file::{
    weight_bytes, Architecture, TrainedFor, TrainingRecord, IDENTITY_BASIS,
};
use crate::nn::train::{train_network, EpochRecord, StopReason, TrainSettings};
use crate::nn::{
    DipNet, JacobianData, JacobianTerm, Loss, Mlp, MlpShape, ModelRecord, ReducedCoordinates,
    Surrogate,
};
use crate::problem::Problem;
use crate::report::svg::{semilogy, Series};

/// Loss functions as the CLI names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LossName {
    /// ‖q − f‖²/‖q‖²
    L2,
    /// + ‖J − ∇f‖²_F/‖J‖²_F in the reduced bases
    H1,
    /// + ‖Σ_r − U_rᵀ∇f V_r‖²_F/‖Σ_r‖²_F (per-sample SVD)
    ReducedH1,
    /// reduced H1 on random diagonal blocks (matrix subsampling)
    Ms,
}

/// Network architectures as the CLI names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchitectureName {
    /// f(m) = q̄ + U ψ(Eᵀ(m − m̄)) on the first r_M vectors of an input basis (--basis).
    Dipnet,
    /// The paper's "Generic" encoder–decoder: the MLP on all d_M coordinates of m (no input
    /// basis); its H1 loss needs full Jacobian data and costs O(d_Q d_M) per sample.
    Generic,
}

impl ArchitectureName {
    /// The name recorded as `architecture.kind`.
    pub fn kind(self) -> &'static str {
        match self {
            ArchitectureName::Dipnet => "dipnet",
            ArchitectureName::Generic => "generic",
        }
    }
}

/// Compute device for training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceName {
    Cpu,
    Cuda,
    Wgpu,
}

/// The burn device for a name; GPU backends exist only in builds with their cargo feature.
pub fn device(name: DeviceName) -> Result<burn::tensor::Device> {
    let unavailable = |feature: &str| {
        Error::invalid(
            "command line",
            "--device",
            format!("a backend of this build (rebuild with `cargo build --release --features {feature}`)"),
            feature,
        )
    };
    match name {
        DeviceName::Cpu => Ok(burn::tensor::Device::flex()),
        #[cfg(feature = "cuda")]
        DeviceName::Cuda => Ok(burn::tensor::Device::cuda(0)),
        #[cfg(not(feature = "cuda"))]
        DeviceName::Cuda => Err(unavailable("cuda")),
        #[cfg(feature = "wgpu")]
        DeviceName::Wgpu => Ok(burn::tensor::Device::wgpu(
            burn::tensor::DeviceKind::DefaultDevice,
        )),
        #[cfg(not(feature = "wgpu"))]
        DeviceName::Wgpu => Err(unavailable("wgpu")),
    }
}

/// Arguments of `dino train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Problem file (TOML) the data were generated for.
    #[arg(long)]
    problem: PathBuf,
    /// Training data folder(s) from `dino generate`.
    #[arg(long, required_unless_present = "control_data", num_args = 1..)]
    data: Vec<PathBuf>,
    /// Train a control surrogate (MR-DINO: input (m, z), output the state) on a folder from
    /// `dino generate --control`; the H1 loss then uses the control Jacobian ∂u/∂z.
    #[arg(long, conflicts_with = "data")]
    control_data: Option<PathBuf>,
    /// Network: a DIPNet on an input basis, or the generic network on the full input.
    #[arg(long, value_enum, default_value_t = ArchitectureName::Dipnet)]
    architecture: ArchitectureName,
    /// Input basis folder from `dino bases` (active subspace by default, or KLE); required for
    /// DIPNets and MR-DINOs, not used by the generic network.
    #[arg(long)]
    basis: Option<PathBuf>,
    /// Input rank r_M (default: all basis vectors).
    #[arg(long)]
    input_rank: Option<usize>,
    /// Output rank r_Q: the identity when r_Q = d_Q, otherwise POD of the training outputs
    /// (default: min(50, d_Q)).
    #[arg(long)]
    output_rank: Option<usize>,
    /// Loss.
    #[arg(long, value_enum, default_value_t = LossName::H1)]
    loss: LossName,
    /// Rank of the per-sample Jacobian SVD (reduced-h1, ms; default min(r_Q, r_M)).
    #[arg(long)]
    svd_rank: Option<usize>,
    /// Singular-vector block size of the ms loss.
    #[arg(long, default_value_t = 10)]
    ms_block: usize,
    /// Weight of the Jacobian term (the L2 term has weight 1).
    #[arg(long, default_value_t = 1.0)]
    jacobian_weight: f64,
    /// Hidden layer width of φ.
    #[arg(long, default_value_t = 50)]
    width: usize,
    /// Hidden layers of φ.
    #[arg(long, default_value_t = 6)]
    depth: usize,
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Learning rate of the first epoch.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Learning rate of the last epoch (geometric decay; default: lr / 10).
    #[arg(long)]
    lr_final: Option<f64>,
    /// Fraction of the samples held out for validation (early stopping, best model).
    #[arg(long, default_value_t = 0.1)]
    validation: f64,
    /// Stop after this many epochs without validation improvement.
    #[arg(long, default_value_t = 50)]
    patience: usize,
    /// Seed of the initialization, split, shuffling and subsampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Continue from this model folder's weights and coordinates (same architecture; e.g. more
    /// epochs at a smaller learning rate).
    #[arg(long)]
    init: Option<PathBuf>,
    /// Anchor the surrogate at the PDE's linearization at this parameter (.npy, e.g. the MAP
    /// point `OUT/laplace/mean.npy` of `dino infer`): the network learns the residual
    /// q − q(m₀) − J(m₀)(m − m₀) and the model stores q(m₀) and J(m₀) (see `nn::anchor`).
    #[arg(long, conflicts_with_all = ["init", "control_data"])]
    anchor: Option<PathBuf>,
    /// Test data: evaluate the trained model and record its metrics in model.json.
    #[arg(long, num_args = 1..)]
    test_data: Vec<PathBuf>,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = DeviceName::Cpu)]
    device: DeviceName,
    /// Override the problem's mesh size.
    #[arg(long)]
    mesh: Option<i64>,
    /// Output model folder.
    #[arg(long)]
    out: PathBuf,
}

/// A basis folder, refused when it was made for another problem.
fn load_basis(dir: &Path, problem: &Problem) -> Result<Basis> {
    let basis = Basis::load(dir)?;
    if basis.info.problem_hash != problem.hash() && !basis.info.problem_hash.is_empty() {
        return Err(Error::invalid(
            dir.join("basis.json").display().to_string(),
            "problem_hash",
            format!(
                "{} (the problem {})",
                problem.hash(),
                problem.path.display()
            ),
            &basis.info.problem_hash,
        ));
    }
    Ok(basis)
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

/// The output basis U (d_Q × r_Q) and its kind: identity for r_Q = d_Q, POD otherwise.
fn output_basis(data: &Dataset, rank: usize) -> Result<(Array2<f64>, &'static str)> {
    let d_q = data.q.ncols();
    if rank == 0 || rank > d_q {
        return Err(Error::invalid(
            "command line",
            "--output-rank",
            format!("between 1 and d_Q = {d_q}"),
            rank,
        ));
    }
    if rank == d_q {
        return Ok((Array2::eye(d_q), "identity"));
    }
    Ok((crate::bases::pod(data, rank)?.decoder, "pod"))
}

/// The input side of a network: the first r_M vectors of a basis from `dino bases` (a DIPNet),
/// or the identity (the generic network).
#[derive(Clone, Copy)]
pub(crate) enum InputChoice<'a> {
    Basis {
        basis: &'a Basis,
        dir: &'a Path,
        rank: usize,
    },
    Identity,
}

impl InputChoice<'_> {
    fn input_basis(&self, d_m: usize) -> InputBasis {
        match self {
            InputChoice::Basis { basis, rank, .. } => {
                let cols = ndarray::s![.., ..*rank];
                InputBasis::reduced(
                    basis.encoder.slice(cols).to_owned(),
                    basis.decoder.slice(cols).to_owned(),
                )
            }
            InputChoice::Identity => InputBasis::Identity { dim: d_m },
        }
    }
}

/// The reduced coordinates (input basis, output basis of rank r_Q) fitted to a data set, its
/// training samples in network coordinates (with Jacobian targets when `with_jacobians`), and
/// the output basis kind.
pub(crate) fn reduced_samples(
    data: &Dataset,
    input: InputChoice<'_>,
    r_q: usize,
    with_jacobians: bool,
) -> Result<(ReducedCoordinates, crate::nn::train::Samples, &'static str)> {
    let (u, output_kind) = output_basis(data, r_q)?;
    let coords = ReducedCoordinates::fit(input.input_basis(data.m.ncols()), u, &data.m, &data.q)?;
    let jacobians = if with_jacobians {
        jacobian_data(data, input)?
    } else {
        None
    };
    let samples = coords.samples_from(&data.m, &data.q, jacobians);
    Ok((coords, samples, output_kind))
}

/// The Jacobian term of a loss name.
pub(crate) fn jacobian_term(loss: LossName, svd_rank: usize, ms_block: usize) -> JacobianTerm {
    match loss {
        LossName::L2 => JacobianTerm::None,
        LossName::H1 => JacobianTerm::Full,
        LossName::ReducedH1 => JacobianTerm::ReducedSvd { rank: svd_rank },
        LossName::Ms => JacobianTerm::Subsampled {
            rank: svd_rank,
            block: ms_block.min(svd_rank),
        },
    }
}

/// Jacobian data of the training set in a form the reduced coordinates take; projected data
/// must have been projected on this very basis's encoder E (the DIPNet H1 target is J E G^{−1/2}),
/// and the generic network needs full Jacobians.
fn jacobian_data<'a>(
    data: &'a Dataset,
    input: InputChoice<'_>,
) -> Result<Option<JacobianData<'a>>> {
    let Some(j) = data.jacobian.as_ref() else {
        return Ok(None);
    };
    match (data.manifest.jacobian, input) {
        (JacobianKind::Full, _) => Ok(Some(JacobianData::Full(j))),
        (JacobianKind::Projected, InputChoice::Identity) => Err(Error::invalid(
            "training data",
            "jacobian",
            "full Jacobians for the generic network (generate with --jacobian full), or --loss l2",
            "Jacobians projected on a basis",
        )),
        (
            JacobianKind::Projected,
            InputChoice::Basis {
                dir: basis_dir,
                rank: r_m,
                ..
            },
        ) => {
            let record = data
                .manifest
                .basis
                .as_ref()
                .expect("projected data record their basis");
            let path = basis_dir.join("encoder.npy");
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            if checksum::hex(&bytes) != record.checksum || record.rank < r_m {
                return Err(Error::invalid(
                    "command line",
                    "--basis",
                    format!(
                        "the basis whose encoder.npy the data's Jacobians were projected on ({}, rank {} ≥ r_M = {r_m}; generate with --jacobian projected --basis BASIS/encoder.npy)",
                        record.file, record.rank
                    ),
                    path.display(),
                ));
            }
            Ok(Some(JacobianData::ProjectedOnEncoder(j)))
        }
        (JacobianKind::None, _) => Ok(None),
    }
}

fn write_training_log(dir: &Path, history: &[EpochRecord]) -> Result<()> {
    let text = serde_json::to_string_pretty(history).expect("serializable log");
    write_atomic(dir.join("training_log.json"), |w| {
        w.write_all(text.as_bytes())
    })?;
    let col = |f: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<f64> {
        history.iter().map(|r| f(r).unwrap_or(f64::NAN)).collect()
    };
    let (tl2, tj, vl2, vj) = (
        col(&|r| Some(r.train_l2)),
        col(&|r| r.train_jacobian),
        col(&|r| r.validation_l2),
        col(&|r| r.validation_jacobian),
    );
    let mut series = vec![Series {
        name: "train L2 term",
        values: &tl2,
    }];
    if history.iter().any(|r| r.train_jacobian.is_some()) {
        series.push(Series {
            name: "train Jacobian term",
            values: &tj,
        });
    }
    if history.iter().any(|r| r.validation_l2.is_some()) {
        series.push(Series {
            name: "validation L2 term",
            values: &vl2,
        });
    }
    if history.iter().any(|r| r.validation_jacobian.is_some()) {
        series.push(Series {
            name: "validation Jacobian term",
            values: &vj,
        });
    }
    let svg = semilogy(
        "Training curve (relative squared errors)",
        "epoch",
        "loss term",
        &series,
    );
    write_atomic(dir.join("training_curve.svg"), |w| {
        w.write_all(svg.as_bytes())
    })
}

pub fn run(args: TrainArgs) -> Result<()> {
    let started = Instant::now();
    let problem = super::load_problem(&args.problem, args.mesh)?;
    for (field, v) in [
        ("--lr", args.lr),
        ("--jacobian-weight", args.jacobian_weight),
    ] {
        positive(field, v)?;
    }
    if !(0.0..1.0).contains(&args.validation) {
        return Err(Error::invalid(
            "command line",
            "--validation",
            "a fraction in [0, 1)",
            args.validation,
        ));
    }
    for (field, v) in [
        ("--epochs", args.epochs),
        ("--batch-size", args.batch_size),
        ("--width", args.width),
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
    let device = device(args.device)?.autodiff();
    let basis = match (&args.basis, args.architecture, &args.control_data) {
        (Some(dir), ArchitectureName::Dipnet, _) | (Some(dir), _, Some(_)) => {
            Some(load_basis(dir, &problem)?)
        }
        (None, ArchitectureName::Dipnet, _) | (None, _, Some(_)) => {
            return Err(Error::invalid(
                "command line",
                "--basis",
                "an input basis folder from `dino bases` (DIPNets and MR-DINOs need one)",
                "none",
            ))
        }
        (Some(_), ArchitectureName::Generic, None) => {
            return Err(Error::invalid(
                "command line",
                "--basis",
                "no basis: the generic network takes every coordinate of m",
                "a basis",
            ))
        }
        (None, ArchitectureName::Generic, None) => None,
    };
    if let (Some(dir), Some(basis)) = (&args.control_data, &basis) {
        return train_control(&args, &problem, dir, basis, device, started);
    }
    let mut data = super::data::load_for(&problem, &args.data)?;
    let anchor = match &args.anchor {
        Some(path) => {
            let point = crate::io::npy::read_vector(path, data.m.ncols(), "--anchor")?;
            let anchor = Anchor::of(problem.model()?.as_ref(), &point)?;
            let projection = match data.manifest.jacobian {
                JacobianKind::Projected => basis.as_ref().map(|b| &b.encoder),
                _ => None,
            };
            data.q = anchor.residual_outputs(&data.m, &data.q);
            data.jacobian = data
                .jacobian
                .as_ref()
                .map(|j| anchor.residual_jacobians(j, projection));
            Some(anchor)
        }
        None => None,
    };
    let input = match (&basis, &args.basis) {
        (Some(basis), Some(dir)) => {
            let r_m = args.input_rank.unwrap_or(basis.info.rank);
            if r_m == 0 || r_m > basis.info.rank {
                return Err(Error::invalid(
                    "command line",
                    "--input-rank",
                    format!("between 1 and the basis rank {}", basis.info.rank),
                    r_m,
                ));
            }
            InputChoice::Basis {
                basis,
                dir,
                rank: r_m,
            }
        }
        _ => {
            if let Some(r) = args.input_rank.filter(|&r| r != data.m.ncols()) {
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
            InputChoice::Identity
        }
    };
    let d_q = data.q.ncols();
    let r_q = args.output_rank.unwrap_or(d_q.min(50));
    let with_jacobians = args.loss != LossName::L2;
    let (mut coords, mut samples, output_kind) =
        reduced_samples(&data, input, r_q, with_jacobians)?;
    let r_m = coords.input_basis.rank();
    let init = args.init.as_ref().map(|dir| -> Result<Surrogate> {
        let s = Surrogate::load(dir)?;
        s.check_problem(&problem, dir)?;
        Ok(s)
    });
    let init = init.transpose()?;
    if let Some(s) = &init {
        // the initial network's own coordinates, so that its weights mean the same thing
        coords = s.net.coordinates.clone();
        let ranks = (coords.input_basis.rank(), coords.output_basis.ncols());
        if ranks != (r_m, r_q) {
            return Err(Error::invalid(
                "command line",
                "--init",
                format!("a model with ranks {r_m}-{r_q}"),
                format!("{}-{}", ranks.0, ranks.1),
            ));
        }
        let jacobians = if with_jacobians {
            jacobian_data(&data, input)?
        } else {
            None
        };
        samples = coords.samples_from(&data.m, &data.q, jacobians);
    }
    let term = jacobian_term(
        args.loss,
        args.svd_rank.unwrap_or(r_q.min(r_m)),
        args.ms_block,
    );
    let loss = loss_of(term, args.jacobian_weight);
    let (train_set, validation) = samples.split(args.validation, args.seed);
    drop(samples); // the split holds copies (full Jacobian targets: 3.3 GB at N = 4096)
    let settings = train_settings(&args)?;
    let shape = MlpShape {
        input: r_m,
        width: args.width,
        depth: args.depth,
        output: r_q,
    };
    let kind = args.architecture.kind();
    let mut record = ModelRecord::new(
        Architecture {
            kind: kind.into(),
            mlp: shape,
            input_basis: match &basis {
                Some(b) => b.info.kind.name().into(),
                None => IDENTITY_BASIS.into(),
            },
            output_basis: output_kind.into(),
        },
        TrainedFor::new(&problem, data.m.ncols(), d_q)?,
    );
    let mlp = match (&init, &args.init) {
        (Some(s), Some(dir)) => initial_weights(s, dir, kind, shape, &device)?,
        _ => Mlp::new(shape, args.seed, &device),
    };
    Surrogate::save_anchored(&mlp, &record, &coords, anchor.as_ref(), &args.out)?;
    let name = match args.architecture {
        ArchitectureName::Dipnet => format!("DIPNet {r_m}-{r_q}"),
        ArchitectureName::Generic => format!("generic network {r_m} → {r_q}"),
    };
    eprintln!(
        "training {name} ({} × {} softplus) with the {} loss on {} samples ({} for validation)",
        args.depth,
        args.width,
        term.name(),
        train_set.count,
        validation.as_ref().map_or(0, |v| v.count)
    );
    let outcome = train_with_checkpoints(
        mlp,
        &train_set,
        validation.as_ref(),
        loss,
        &settings,
        &device,
        &args.out,
    )?;
    record.training = Some(TrainingRecord {
        loss,
        settings: settings.clone(),
        data: args.data.iter().map(|p| p.display().to_string()).collect(),
        training_samples: train_set.count,
        validation_samples: validation.as_ref().map_or(0, |v| v.count),
        epochs_run: outcome.history.len(),
        best_epoch: outcome.best_epoch,
        stop: outcome.stop.clone(),
        // cumulative over `--init` stages: the offline cost of the final model
        wall_s: started.elapsed().as_secs_f64()
            + outcome.resumed_seconds
            + init
                .as_ref()
                .and_then(|s| s.record.training.as_ref())
                .map_or(0.0, |t| t.wall_s),
        data_wall_s: data.manifest.cost.wall_s,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        control_region: None,
    });
    let mut surrogate = Surrogate {
        net: DipNet::new(&outcome.mlp, coords.clone()),
        record: record.clone(),
        anchor,
    };
    if !args.test_data.is_empty() {
        let test = super::data::load_for(&problem, &args.test_data)?;
        let model = problem.model()?;
        surrogate.record.test_metrics = Some(metrics_on(&surrogate, &test, model.as_ref())?);
    }
    Surrogate::save_anchored(
        &outcome.mlp,
        &surrogate.record,
        &coords,
        surrogate.anchor.as_ref(),
        &args.out,
    )?;
    finish_report(
        &outcome,
        surrogate.record.test_metrics.as_ref(),
        started,
        &args.out,
    )
}

/// The loss with Jacobian term `term`, weighted `jacobian_weight` against the L2 term.
fn loss_of(term: JacobianTerm, jacobian_weight: f64) -> Loss {
    let mut loss = Loss::with_term(term);
    if term != JacobianTerm::None {
        loss.jacobian_weight = jacobian_weight;
    }
    loss
}

/// Adam settings from the command line (final learning rate lr/10 unless given).
fn train_settings(args: &TrainArgs) -> Result<TrainSettings> {
    let settings = TrainSettings {
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        final_learning_rate: args.lr_final.unwrap_or(args.lr / 10.0),
        patience: Some(args.patience),
        seed: args.seed,
        progress: true,
        resume_dir: Some(args.out.join("resume")),
    };
    positive("--lr-final", settings.final_learning_rate)?;
    Ok(settings)
}

/// The weights of an `--init` model, which must be of `kind` with the MLP `shape` of this run.
fn initial_weights(
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

/// Trains with the best network checkpointed into `out` and writes the training log and curve.
fn train_with_checkpoints(
    mlp: Mlp,
    train_set: &crate::nn::train::Samples,
    validation: Option<&crate::nn::train::Samples>,
    loss: Loss,
    settings: &TrainSettings,
    device: &burn::tensor::Device,
    out: &Path,
) -> Result<crate::nn::train::TrainOutcome> {
    let mut checkpoint = |mlp: &Mlp, _: &EpochRecord| checkpoint_weights(mlp, out);
    let outcome = train_network(
        mlp,
        train_set,
        validation,
        loss,
        settings,
        device,
        &mut checkpoint,
    )?;
    write_training_log(out, &outcome.history)?;
    Ok(outcome)
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

/// Prints how training ended; an error when the loss became non-finite.
fn finish_report(
    outcome: &crate::nn::train::TrainOutcome,
    metrics: Option<&crate::nn::Metrics>,
    started: Instant,
    out: &Path,
) -> Result<()> {
    eprintln!(
        "{} after {} epochs in {:.1} s (best epoch {}: validation loss {}); wrote {}/model.json, weights.safetensors, training_log.json, training_curve.svg",
        match outcome.stop {
            StopReason::Completed => "finished".to_string(),
            StopReason::EarlyStopping => "stopped early".to_string(),
            StopReason::NonFiniteLoss { epoch } => format!("STOPPED: the loss became NaN/infinite in epoch {epoch}; kept the last good checkpoint"),
        },
        outcome.history.len(),
        started.elapsed().as_secs_f64(),
        outcome.best_epoch.map_or("-".into(), |e| e.to_string()),
        outcome.best_epoch.and_then(|e| outcome.history.get(e)).and_then(|r| r.validation_loss).map_or("-".into(), |v| format!("{v:.3e}")),
        out.display()
    );
    if let Some(m) = metrics {
        print_metrics(m);
    }
    if let StopReason::NonFiniteLoss { epoch } = outcome.stop {
        return Err(Error::numerical(
            "training",
            format!("the loss became NaN or infinite in epoch {epoch} (try a smaller --lr); the best model so far is in {}", out.display()),
        ));
    }
    Ok(())
}

/// Test metrics on a data set: full Jacobians from the data when stored, else recomputed.
pub(crate) fn metrics_on(
    surrogate: &Surrogate,
    test: &Dataset,
    model: &dyn crate::models::PdeModel,
) -> Result<crate::nn::Metrics> {
    let jac = match (test.manifest.jacobian, test.jacobian.as_ref()) {
        (JacobianKind::Full, Some(j)) => TestJacobians::Stored(j),
        _ => TestJacobians::Recompute(model),
    };
    test_metrics(
        &surrogate.net,
        surrogate.anchor.as_ref(),
        &test.m,
        &test.q,
        jac,
    )
}

fn print_metrics(m: &crate::nn::Metrics) {
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.2}%", 100.0 * v));
    eprintln!(
        "test ({} samples): L2 accuracy {}, H1 accuracy {}, reduced H1 accuracy {} (1 − E[rel. err.]: {}, {}, {})",
        m.samples,
        pct(Some(m.l2_accuracy)),
        pct(m.h1_accuracy),
        pct(m.reduced_h1_accuracy),
        pct(Some(m.l2_accuracy_mean_relative)),
        pct(m.h1_accuracy_mean_relative),
        pct(m.reduced_h1_accuracy_mean_relative),
    );
}

/// Arguments of `dino eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Surrogate model folder from `dino train`.
    #[arg(long)]
    surrogate: PathBuf,
    /// Test data folder(s); full Jacobians are recomputed with the PDE when not stored.
    #[arg(long, required = true, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Problem file (default: the one recorded in the data's manifest).
    #[arg(long)]
    problem: Option<PathBuf>,
    /// Write the metrics as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Record the metrics in the model's model.json.
    #[arg(long)]
    record: bool,
}

pub fn eval(args: EvalArgs) -> Result<()> {
    let mut surrogate = Surrogate::load(&args.surrogate)?;
    if surrogate.record.problem.control_dim.is_some() {
        // a control surrogate: the data are a `dino generate --control` folder
        let test = crate::data::load_control(&args.data[0])?;
        if test.manifest.problem_hash != surrogate.record.problem.hash {
            return Err(Error::invalid(
                args.data[0].join("manifest.json").display().to_string(),
                "problem_hash",
                format!(
                    "{} (the surrogate's problem)",
                    surrogate.record.problem.hash
                ),
                &test.manifest.problem_hash,
            ));
        }
        let metrics = crate::nn::control::control_metrics(&surrogate.net, &test)?;
        return report_metrics(&args, &mut surrogate, metrics);
    }
    let manifest = crate::data::Manifest::read(&args.data[0])?;
    let problem = match &args.problem {
        Some(p) => Problem::load(p)?,
        None => {
            let p = Problem::load(&manifest.problem.file)?;
            if p.hash() == manifest.problem.hash {
                p
            } else {
                p.with_mesh(manifest.problem.mesh as i64)?
            }
        }
    };
    surrogate.check_problem(&problem, &args.surrogate)?;
    let test = super::data::load_for(&problem, &args.data)?;
    let model = problem.model()?;
    let metrics = metrics_on(&surrogate, &test, model.as_ref())?;
    report_metrics(&args, &mut surrogate, metrics)
}

/// Prints the metrics, writes them as JSON, and records them in model.json when asked.
fn report_metrics(
    args: &EvalArgs,
    surrogate: &mut Surrogate,
    metrics: crate::nn::Metrics,
) -> Result<()> {
    print_metrics(&metrics);
    let text = serde_json::to_string_pretty(&metrics).expect("serializable");
    match &args.json {
        Some(path) => write_atomic(path, |w| w.write_all(text.as_bytes()))?,
        None => println!("{text}"),
    }
    if args.record {
        surrogate.record.test_metrics = Some(metrics);
        surrogate.save_record(&args.surrogate)?;
    }
    Ok(())
}

/// `dino train --control-data`: an MR-DINO on (m, z) ↦ u with the basis's first r_M vectors as
/// m-encoder and the data's first r_U POD modes as decoder; the H1 loss uses ∂u/∂z.
fn train_control(
    args: &TrainArgs,
    problem: &Problem,
    dir: &Path,
    basis: &Basis,
    device: burn::tensor::Device,
    started: Instant,
) -> Result<()> {
    let data = crate::data::load_control(dir)?;
    if data.manifest.problem_hash != problem.hash() {
        return Err(Error::invalid(
            dir.join("manifest.json").display().to_string(),
            "problem_hash",
            format!(
                "{} (the problem {})",
                problem.hash(),
                problem.path.display()
            ),
            &data.manifest.problem_hash,
        ));
    }
    let r_m = args.input_rank.unwrap_or(basis.info.rank);
    if r_m == 0 || r_m > basis.info.rank || basis.encoder.nrows() != data.m.ncols() {
        return Err(Error::invalid(
            "command line",
            "--input-rank / --basis",
            format!(
                "a basis of the parameter (d_M = {}) and a rank between 1 and its rank {}",
                data.m.ncols(),
                basis.info.rank
            ),
            format!("rank {r_m} of a basis with {} rows", basis.encoder.nrows()),
        ));
    }
    let term = match args.loss {
        LossName::L2 => JacobianTerm::None,
        LossName::H1 => JacobianTerm::Full,
        other => {
            return Err(Error::invalid(
                "command line",
                "--loss",
                "l2 or h1 for a control surrogate",
                format!("{other:?}"),
            ))
        }
    };
    let cols = ndarray::s![.., ..r_m];
    let r_u = args.output_rank.unwrap_or(data.manifest.pod_rank);
    let (coords, samples) = crate::nn::control_samples(
        &data,
        &basis.encoder.slice(cols).to_owned(),
        &basis.decoder.slice(cols).to_owned(),
        r_u,
    )?;
    let n_z = data.manifest.control_dim;
    let loss = loss_of(term, args.jacobian_weight);
    let (train_set, validation) = samples.split(args.validation, args.seed);
    let settings = train_settings(args)?;
    let shape = MlpShape {
        input: r_m + n_z,
        width: args.width,
        depth: args.depth,
        output: r_u,
    };
    let mut record = ModelRecord::new(
        Architecture {
            kind: "mr-dino".into(),
            mlp: shape,
            input_basis: basis.info.kind.name().into(),
            output_basis: "pod".into(),
        },
        TrainedFor::control(problem)?,
    );
    let (mlp, init_wall_s) = match &args.init {
        Some(init_dir) => {
            let init = Surrogate::load(init_dir)?;
            init.check_problem(problem, init_dir)?;
            // its weights mean the same thing only in the same coordinates (same data and basis)
            let (a, b) = (&init.net.coordinates, &coords);
            let same = a.input_basis == b.input_basis
                && a.output_basis == b.output_basis
                && a.input_mean == b.input_mean
                && a.input_std == b.input_std
                && a.output_std == b.output_std;
            if !same {
                return Err(Error::invalid(
                    init_dir.join("model.json").display().to_string(),
                    "coordinates",
                    "an MR-DINO trained on the same --control-data and --basis",
                    "a model with other reduced coordinates",
                ));
            }
            let wall = init.record.training.as_ref().map_or(0.0, |t| t.wall_s);
            (
                initial_weights(&init, init_dir, "mr-dino", shape, &device)?,
                wall,
            )
        }
        None => (Mlp::new(shape, args.seed, &device), 0.0),
    };
    Surrogate::save(&mlp, &record, &coords, &args.out)?;
    eprintln!(
        "training MR-DINO ({r_m} + {n_z} inputs, {} × {} softplus, {r_u} POD outputs) with the {} loss on {} samples ({} for validation)",
        args.depth,
        args.width,
        term.name(),
        train_set.count,
        validation.as_ref().map_or(0, |v| v.count)
    );
    let outcome = train_with_checkpoints(
        mlp,
        &train_set,
        validation.as_ref(),
        loss,
        &settings,
        &device,
        &args.out,
    )?;
    record.training = Some(TrainingRecord {
        loss,
        settings: settings.clone(),
        data: vec![dir.display().to_string()],
        training_samples: train_set.count,
        validation_samples: validation.as_ref().map_or(0, |v| v.count),
        epochs_run: outcome.history.len(),
        best_epoch: outcome.best_epoch,
        stop: outcome.stop.clone(),
        // cumulative over `--init` stages
        wall_s: started.elapsed().as_secs_f64() + outcome.resumed_seconds + init_wall_s,
        data_wall_s: data.manifest.forward_s + data.manifest.jacobian_s,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        control_region: data.manifest.region.clone(),
    });
    let net = DipNet::new(&outcome.mlp, coords.clone());
    if let Some(test_dir) = args.test_data.first() {
        let test = crate::data::load_control(test_dir)?;
        record.test_metrics = Some(crate::nn::control::control_metrics(&net, &test)?);
    }
    Surrogate::save(&outcome.mlp, &record, &coords, &args.out)?;
    finish_report(&outcome, record.test_metrics.as_ref(), started, &args.out)
}
