//! `dino train` and `dino eval`: the arguments of [`crate::workflow::train`] and
//! [`crate::workflow::eval`], the training curve, and the summaries they print.

use std::path::PathBuf;

use clap::Args;

use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::nn::train::StopReason;
use crate::report::training::write_training_curve;
use crate::workflow::coordinates::{ArchitectureName, DeviceName, LossName};
use crate::workflow::eval::{self, EvalConfig};
use crate::workflow::train::{self, TrainConfig, TrainOutcome};

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

impl TrainArgs {
    /// The workflow's config (the command line is recorded in model.json).
    fn config(self) -> TrainConfig {
        TrainConfig {
            problem: self.problem,
            mesh: self.mesh,
            data: self.data,
            control_data: self.control_data,
            architecture: self.architecture,
            basis: self.basis,
            input_rank: self.input_rank,
            output_rank: self.output_rank,
            loss: self.loss,
            svd_rank: self.svd_rank,
            ms_block: self.ms_block,
            jacobian_weight: self.jacobian_weight,
            width: self.width,
            depth: self.depth,
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            lr_final: self.lr_final,
            validation: self.validation,
            patience: self.patience,
            seed: self.seed,
            init: self.init,
            anchor: self.anchor,
            test_data: self.test_data,
            device: self.device,
            out: self.out,
            command: std::env::args().collect::<Vec<_>>().join(" "),
        }
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    let outcome = train::run(&args.config())?;
    write_training_curve(&outcome.out, &outcome.history)?;
    finish_report(&outcome)
}

/// Prints how training ended; an error when the loss became non-finite.
fn finish_report(outcome: &TrainOutcome) -> Result<()> {
    let best = outcome.best_epoch;
    let best_loss = best
        .and_then(|e| outcome.history.get(e))
        .and_then(|r| r.validation_loss);
    eprintln!(
        "{} after {} epochs in {:.1} s (best epoch {}: validation loss {}); wrote {}/model.json, weights.safetensors, training_log.json, training_curve.svg",
        match outcome.stop {
            StopReason::Completed => "finished".to_string(),
            StopReason::EarlyStopping => "stopped early".to_string(),
            StopReason::NonFiniteLoss { epoch } => format!("STOPPED: the loss became NaN/infinite in epoch {epoch}; kept the last good checkpoint"),
        },
        outcome.history.len(),
        outcome.wall_s,
        best.map_or("-".into(), |e| e.to_string()),
        best_loss.map_or("-".into(), |v| format!("{v:.3e}")),
        outcome.out.display()
    );
    if let Some(m) = &outcome.record.test_metrics {
        print_metrics(m);
    }
    if let Some(drop) = train::still_improving(outcome) {
        eprintln!(
            "warning: training stopped while the validation loss was still falling ({:.1}% lower \
             over the last fifth of the epochs; best epoch {} of {}): the model is not converged. \
             Continue from it with:\n  {}",
            100.0 * drop,
            outcome.best_epoch.unwrap_or(0),
            outcome.history.len(),
            continue_command(&outcome.out)
        );
    }
    if let StopReason::NonFiniteLoss { epoch } = outcome.stop {
        return Err(Error::numerical(
            "training",
            format!("the loss became NaN or infinite in epoch {epoch} (try a smaller --lr); the best model so far is in {}", outcome.out.display()),
        ));
    }
    Ok(())
}

/// This command line with `--init OUT --out OUT-continued` in place of its `--out`/`--init`.
fn continue_command(out: &std::path::Path) -> String {
    let mut args: Vec<String> = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if a == "--out" || a == "--init" {
            it.next();
        } else if !(a.starts_with("--out=") || a.starts_with("--init=")) {
            args.push(a);
        }
    }
    let next = format!("{}-continued", out.display());
    format!(
        "dino {} --init {} --out {next}",
        args.join(" "),
        out.display()
    )
}

pub(crate) fn print_metrics(m: &crate::nn::Metrics) {
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
    let config = EvalConfig {
        surrogate: args.surrogate,
        data: args.data,
        problem: args.problem,
        record: args.record,
    };
    let metrics = eval::run(&config)?.metrics;
    print_metrics(&metrics);
    let text = serde_json::to_string_pretty(&metrics).expect("serializable");
    match &args.json {
        Some(path) => write_atomic(path, |w| w.write_all(text.as_bytes())),
        None => {
            println!("{text}");
            Ok(())
        }
    }
}
