//! Test accuracies of a trained surrogate (the paper's eq. 3.5 metrics and their eq. 3.6
//! mean-relative variants): a DIPNet or generic network on a data set of (m, q(m), ∇q(m)), or an
//! MR-DINO on a control data set.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::{Dataset, JacobianKind};
use crate::error::{Error, Result};
use crate::nn::evaluate::{test_metrics, TestJacobians};
use crate::nn::{Metrics, Surrogate};
use crate::problem::Problem;

/// What `dino eval` is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalConfig {
    /// Surrogate model folder from `dino train`.
    pub surrogate: PathBuf,
    /// Test data folder(s); full Jacobians are recomputed with the PDE when not stored.
    pub data: Vec<PathBuf>,
    /// Problem file (default: the one recorded in the data's manifest).
    pub problem: Option<PathBuf>,
    /// Record the metrics in the model's model.json.
    pub record: bool,
}

/// The test accuracies.
#[derive(Debug, Clone, Serialize)]
pub struct EvalOutcome {
    pub metrics: Metrics,
}

/// Test metrics on a data set: full Jacobians from the data when stored, else recomputed.
pub fn metrics_on(
    surrogate: &Surrogate,
    test: &Dataset,
    model: &dyn crate::models::PdeModel,
) -> Result<Metrics> {
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

/// The metrics of a control surrogate on a `dino generate --control` folder.
fn control_metrics(config: &EvalConfig, surrogate: &Surrogate) -> Result<Metrics> {
    let test = crate::data::load_control(&config.data[0])?;
    if test.manifest.problem_hash != surrogate.record.problem.hash {
        return Err(Error::invalid(
            config.data[0].join("manifest.json").display().to_string(),
            "problem_hash",
            format!(
                "{} (the surrogate's problem)",
                surrogate.record.problem.hash
            ),
            &test.manifest.problem_hash,
        ));
    }
    crate::nn::control::control_metrics(&surrogate.net, &test)
}

/// The problem of the test data: the configured one, or the data's own (file and mesh).
fn problem_of(config: &EvalConfig) -> Result<Problem> {
    let manifest = crate::data::Manifest::read(&config.data[0])?;
    if let Some(p) = &config.problem {
        return Problem::load(p);
    }
    let p = Problem::load(&manifest.problem.file)?;
    if p.hash() == manifest.problem.hash {
        Ok(p)
    } else {
        p.with_mesh(manifest.problem.mesh as i64)
    }
}

/// Evaluates the surrogate on the test data; with `config.record` the metrics are also stored
/// in its model.json.
pub fn run(config: &EvalConfig) -> Result<EvalOutcome> {
    let mut surrogate = Surrogate::load(&config.surrogate)?;
    let metrics = if surrogate.record.problem.control_dim.is_some() {
        control_metrics(config, &surrogate)?
    } else {
        let problem = problem_of(config)?;
        surrogate.check_problem(&problem, &config.surrogate)?;
        let test = super::inputs::load_data_for(&problem, &config.data)?;
        let model = problem.model()?;
        metrics_on(&surrogate, &test, model.as_ref())?
    };
    if config.record {
        surrogate.record.test_metrics = Some(metrics.clone());
        surrogate.save_record(&config.surrogate)?;
    }
    Ok(EvalOutcome { metrics })
}
