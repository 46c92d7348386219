//! `train` with `control_data`: an MR-DINO on (m, z) ↦ u with the basis's first r_M vectors as
//! m-encoder and the data's first r_U POD modes as decoder; the H1 loss uses the control
//! Jacobian Φᵀ ∂u/∂z (see [`crate::nn::control`]).

use std::path::Path;
use std::time::Instant;

use super::coordinates::{loss_of, LossName};
use super::train::{
    finished, initial_weights, train_settings, TrainConfig, TrainOutcome, Training,
};
use crate::bases::Basis;
use crate::data::ControlDataset;
use crate::error::{Error, Result};
use crate::nn::model_file::{Architecture, TrainedFor};
use crate::nn::{DipNet, JacobianTerm, Mlp, MlpShape, ModelRecord, ReducedCoordinates, Surrogate};
use crate::problem::Problem;
use crate::store::check_made_for;

/// Checks the control data against the problem and the basis; the input rank r_M.
fn checked_rank(
    config: &TrainConfig,
    problem: &Problem,
    dir: &Path,
    basis: &Basis,
    data: &ControlDataset,
) -> Result<usize> {
    check_made_for(
        &dir.join("manifest.json"),
        "problem_hash",
        &data.manifest.problem_hash,
        &problem.hash(),
        &problem.path,
    )?;
    let r_m = config.input_rank.unwrap_or(basis.info.rank);
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
    Ok(r_m)
}

/// The Jacobian term of a control surrogate's loss (L2 or the control-Jacobian H1).
fn control_term(loss: LossName) -> Result<JacobianTerm> {
    match loss {
        LossName::L2 => Ok(JacobianTerm::None),
        LossName::H1 => Ok(JacobianTerm::Full),
        other => Err(Error::invalid(
            "command line",
            "--loss",
            "l2 or h1 for a control surrogate",
            format!("{other:?}"),
        )),
    }
}

/// The `--init` MR-DINO's weights and cumulative training time; its weights mean the same
/// thing only in the same coordinates (same data and basis).
fn init_weights(
    config: &TrainConfig,
    problem: &Problem,
    coords: &ReducedCoordinates,
    shape: MlpShape,
    device: &burn::tensor::Device,
) -> Result<(Mlp, f64)> {
    let Some(init_dir) = &config.init else {
        return Ok((Mlp::new(shape, config.seed, device), 0.0));
    };
    let init = Surrogate::load(init_dir)?;
    init.check_problem(problem, init_dir)?;
    let (a, b) = (&init.net.coordinates, coords);
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
    Ok((
        initial_weights(&init, init_dir, "mr-dino", shape, device)?,
        wall,
    ))
}

/// Trains the MR-DINO of `config` on the control data in `dir` into `config.out`.
pub(crate) fn run(
    config: &TrainConfig,
    problem: &Problem,
    dir: &Path,
    basis: &Basis,
    device: burn::tensor::Device,
    started: Instant,
) -> Result<TrainOutcome> {
    let data = crate::data::load_control(dir)?;
    let r_m = checked_rank(config, problem, dir, basis, &data)?;
    let term = control_term(config.loss)?;
    let cols = ndarray::s![.., ..r_m];
    let r_u = config.output_rank.unwrap_or(data.manifest.pod_rank);
    let (coords, samples) = crate::nn::control_samples(
        &data,
        &basis.encoder.slice(cols).to_owned(),
        &basis.decoder.slice(cols).to_owned(),
        r_u,
    )?;
    let n_z = data.manifest.control_dim;
    let loss = loss_of(term, config.jacobian_weight);
    let (train_set, validation) = samples.split(config.validation, config.seed);
    let settings = train_settings(config)?;
    let shape = MlpShape {
        input: r_m + n_z,
        width: config.width,
        depth: config.depth,
        output: r_u,
    };
    let architecture = Architecture {
        kind: "mr-dino".into(),
        mlp: shape,
        input_basis: basis.info.kind.name().into(),
        output_basis: "pod".into(),
    };
    let mut record = ModelRecord::new(architecture, TrainedFor::control(problem)?);
    let (mlp, init_wall_s) = init_weights(config, problem, &coords, shape, &device)?;
    Surrogate::save(&mlp, &record, &coords, &config.out)?;
    let run = Training {
        train_set: &train_set,
        validation: validation.as_ref(),
        loss,
        settings: &settings,
        device: &device,
        out: &config.out,
    };
    run.announce(&format!(
        "MR-DINO ({r_m} + {n_z} inputs, {} × {} softplus, {r_u} POD outputs)",
        config.depth, config.width
    ));
    let outcome = run.train(mlp)?;
    let data_wall_s = data.manifest.forward_s + data.manifest.jacobian_s;
    let data_names = vec![dir.display().to_string()];
    let region = data.manifest.region.clone();
    record.training = Some(run.record(
        &outcome,
        config,
        data_names,
        started,
        init_wall_s,
        data_wall_s,
        region,
    ));
    let net = DipNet::new(&outcome.mlp, coords.clone());
    if let Some(test_dir) = config.test_data.first() {
        let test = crate::data::load_control(test_dir)?;
        record.test_metrics = Some(crate::nn::control::control_metrics(&net, &test)?);
    }
    Surrogate::save(&outcome.mlp, &record, &coords, &config.out)?;
    Ok(finished(outcome, record, config, started))
}
