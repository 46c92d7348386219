//! The paper's accuracy study (Figs 5–13): test accuracies 1 − sqrt(E[rel. sq. error]) (eq. 3.5)
//! of DIPNets of several ranks and of the generic network, trained with the L2 / H1 /
//! reduced-H1 / MS losses on growing training sets (the first N samples), against full test
//! Jacobians.

use std::path::PathBuf;
use std::time::Instant;

use ndarray::Array3;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::coordinates::{jacobian_term, reduced_samples, InputChoice, LossName};
use crate::bases::Basis;
use crate::data::{Dataset, JacobianKind};
use crate::error::{Error, Result};
use crate::nn::evaluate::{test_metrics, TestJacobians};
use crate::nn::train::{train_network, TrainSettings};
use crate::nn::{DipNet, Loss, Mlp, MlpShape};

/// A network of the study.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum StudyArch {
    /// DIPNet r_M-r_Q.
    Dipnet(usize, usize),
    /// The generic network (all d_M inputs, r_Q = min(50, d_Q)).
    Generic,
}

impl StudyArch {
    /// The label in the CSV, table and plots.
    pub fn label(self) -> String {
        match self {
            StudyArch::Dipnet(r_m, r_q) => format!("DIPNet {r_m}-{r_q}"),
            StudyArch::Generic => "Generic".into(),
        }
    }
}

impl std::str::FromStr for StudyArch {
    type Err = Error;
    /// `r_M-r_Q` such as `100-50`, or `generic`.
    fn from_str(s: &str) -> Result<StudyArch> {
        let bad = || {
            Error::invalid(
                "command line",
                "--archs",
                "ranks r_M-r_Q such as 100-50, or generic",
                s,
            )
        };
        if s.trim().eq_ignore_ascii_case("generic") {
            return Ok(StudyArch::Generic);
        }
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        Ok(StudyArch::Dipnet(
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        ))
    }
}

/// What `dino study` is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StudyConfig {
    pub problem: PathBuf,
    /// Training data; the first N samples are used for each size N.
    pub data: Vec<PathBuf>,
    /// Test data (full test Jacobians are computed once with the PDE when not stored).
    pub test: Vec<PathBuf>,
    /// Input basis folder; needed for DIPNets.
    pub basis: Option<PathBuf>,
    pub sizes: Vec<usize>,
    pub losses: Vec<LossName>,
    pub archs: Vec<StudyArch>,
    pub epochs: usize,
    /// At least this many optimizer steps per configuration.
    pub min_steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub seed: u64,
}

/// One trained configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StudyRow {
    pub arch: String,
    pub loss: String,
    pub n_train: usize,
    pub l2_accuracy: f64,
    pub h1_accuracy: f64,
    pub reduced_h1_accuracy: f64,
    pub epochs: usize,
    pub wall_s: f64,
}

/// The study's rows and the name of the problem's model.
#[derive(Debug, Clone, Serialize)]
pub struct StudyOutcome {
    pub model: String,
    pub rows: Vec<StudyRow>,
}

/// The paper's reported H1 accuracies (DIPNet 100-50, full H1 loss, N = 4096).
pub fn paper_h1(problem_model: &str) -> Option<f64> {
    match problem_model.replace('-', "_").as_str() {
        "poisson" => Some(0.421),
        "reaction_diffusion" => Some(0.415),
        "convection_reaction_diffusion" => Some(0.747),
        _ => None,
    }
}

/// Full test Jacobians: the stored ones, or computed once with the PDE.
fn full_test_jacobians(test: &Dataset, model: &dyn crate::models::PdeModel) -> Result<Array3<f32>> {
    if let (Some(j), JacobianKind::Full) = (&test.jacobian, test.manifest.jacobian) {
        return Ok(j.clone());
    }
    eprintln!(
        "computing {} full test Jacobians with the PDE …",
        test.len()
    );
    let rows: Vec<ndarray::Array2<f32>> = (0..test.len())
        .into_par_iter()
        .map(|i| -> Result<_> {
            Ok(model
                .linearize(test.m.row(i).as_slice().expect("row-major"))?
                .jacobian()
                .mapv(|v| v as f32))
        })
        .collect::<Result<_>>()?;
    let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
    Ok(ndarray::stack(ndarray::Axis(0), &views).expect("equal shapes"))
}

/// The data and settings shared by every configuration.
struct Study<'a> {
    config: &'a StudyConfig,
    data: &'a Dataset,
    test: &'a Dataset,
    test_jacobians: &'a Array3<f32>,
    device: burn::tensor::Device,
}

impl Study<'_> {
    /// Trains one network of `arch` per loss on the first `n` samples.
    fn train_size(
        &self,
        arch: StudyArch,
        input: InputChoice<'_>,
        r_q: usize,
        losses: &[LossName],
        n: usize,
        on_row: &mut dyn FnMut(StudyRow) -> Result<()>,
    ) -> Result<()> {
        let (config, data) = (self.config, self.data);
        if n > data.len() {
            return Err(Error::invalid(
                "command line",
                "--sizes",
                format!("sizes up to the {} training samples", data.len()),
                n,
            ));
        }
        // the whole set is borrowed, not copied (full Jacobians: 3.5 GB at N = 4096)
        let head;
        let subset = if n == data.len() {
            data
        } else {
            head = data.head(n);
            &head
        };
        let with_jacobians = losses.iter().any(|&l| l != LossName::L2);
        let (coords, samples, _) = reduced_samples(subset, input, r_q, with_jacobians)?;
        let r_m = coords.input_basis.rank();
        let (train_set, validation) = samples.split(0.1, config.seed);
        for &loss_name in losses {
            let term = jacobian_term(loss_name, r_q.min(r_m), 10);
            let loss = Loss::with_term(term);
            let batches = train_set.count.div_ceil(config.batch_size.max(1)).max(1);
            let epochs = config.epochs.max(config.min_steps.div_ceil(batches));
            let settings = TrainSettings {
                epochs,
                batch_size: config.batch_size.min(train_set.count.max(1)),
                learning_rate: config.lr,
                final_learning_rate: config.lr / 10.0,
                patience: Some(epochs / 2 + 1),
                seed: config.seed,
                progress: false,
                resume_dir: None,
            };
            let shape = MlpShape {
                input: r_m,
                width: 50,
                depth: 6,
                output: r_q,
            };
            let t = Instant::now();
            let outcome = train_network(
                Mlp::new(shape, config.seed, &self.device),
                &train_set,
                validation.as_ref(),
                loss,
                &settings,
                &self.device,
                &mut |_, _| Ok(()),
            )?;
            let net = DipNet::new(&outcome.mlp, coords.clone());
            let jacobians = TestJacobians::Stored(self.test_jacobians);
            let m = test_metrics(&net, None, &self.test.m, &self.test.q, jacobians)?;
            on_row(StudyRow {
                arch: arch.label(),
                loss: term.name().into(),
                n_train: n,
                l2_accuracy: m.l2_accuracy,
                h1_accuracy: m.h1_accuracy.unwrap_or(f64::NAN),
                reduced_h1_accuracy: m.reduced_h1_accuracy.unwrap_or(f64::NAN),
                epochs: outcome.history.len(),
                wall_s: t.elapsed().as_secs_f64(),
            })?;
        }
        Ok(())
    }
}

/// Runs the study; `on_row` sees every rows-so-far after each trained configuration (so that
/// partial results can be written as they come).
pub fn run(
    config: &StudyConfig,
    on_row: &mut dyn FnMut(&StudyOutcome) -> Result<()>,
) -> Result<StudyOutcome> {
    let problem = crate::problem::Problem::load(&config.problem)?;
    let data = super::inputs::load_data_for(&problem, &config.data)?;
    let test = super::inputs::load_data_for(&problem, &config.test)?;
    let model = problem.model()?;
    let basis = match &config.basis {
        Some(dir) => Some(Basis::load(dir)?),
        None if config
            .archs
            .iter()
            .any(|a| matches!(a, StudyArch::Dipnet(..))) =>
        {
            return Err(Error::invalid(
                "command line",
                "--basis",
                "an input basis folder for the DIPNets of --archs",
                "none",
            ))
        }
        None => None,
    };
    let full_jacobians = data.manifest.jacobian == JacobianKind::Full;
    let test_jacobians = full_test_jacobians(&test, model.as_ref())?;
    let study = Study {
        config,
        data: &data,
        test: &test,
        test_jacobians: &test_jacobians,
        device: burn::tensor::Device::flex().autodiff(),
    };
    let mut outcome = StudyOutcome {
        model: model.name().to_string(),
        rows: Vec::new(),
    };
    for &arch in &config.archs {
        let (input, r_q) = match (arch, &basis, &config.basis) {
            (StudyArch::Dipnet(r_m, r_q), Some(basis), Some(dir)) => (
                InputChoice::Basis {
                    basis,
                    dir,
                    rank: r_m,
                },
                r_q,
            ),
            _ => (InputChoice::Identity, data.q.ncols().min(50)),
        };
        let losses: Vec<LossName> = match arch {
            StudyArch::Generic if !full_jacobians => {
                eprintln!("the generic network is trained with the L2 loss only: its Jacobian losses need full Jacobian data (dino generate --jacobian full)");
                config
                    .losses
                    .iter()
                    .copied()
                    .filter(|&l| l == LossName::L2)
                    .collect()
            }
            _ => config.losses.clone(),
        };
        for &n in &config.sizes {
            let mut push = |row: StudyRow| {
                outcome.rows.push(row);
                on_row(&outcome)
            };
            study.train_size(arch, input, r_q, &losses, n, &mut push)?;
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    #[test]
    fn paper_numbers_are_found_for_every_model_name_spelling() {
        assert_eq!(super::paper_h1("poisson"), Some(0.421));
        assert_eq!(super::paper_h1("reaction_diffusion"), Some(0.415));
        assert_eq!(super::paper_h1("reaction-diffusion"), Some(0.415));
        assert_eq!(
            super::paper_h1("convection_reaction_diffusion"),
            Some(0.747)
        );
        assert_eq!(super::paper_h1("navier_stokes"), None);
    }
}
