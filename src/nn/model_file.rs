//! Surrogate model folders: everything needed to evaluate a trained DIPNet (or generic
//! network), and what it was trained for.
//!
//! ```text
//! model.json            format, architecture, problem (file, hash, d_M, d_Q), normalization,
//!                       training configuration and log summary, test metrics, file checksums
//! weights.safetensors   the MLP φ (burn's store; readable by numpy/PyTorch safetensors)
//! encoder.npy           E (d_M × r_M)         decoder.npy  V (d_M × r_M)
//!                       (absent for the generic network: architecture.input_basis "identity")
//! input_shift.npy       m̄ (d_M)               output_basis.npy  U (d_Q × r_Q)
//! output_shift.npy      q̄ (d_Q)
//! ```
//! Every file is written atomically and checked against its recorded checksum when loaded, so
//! a truncated or edited file is reported by name. A model refuses a problem whose hash or
//! dimensions differ from the ones it was trained on.

use std::collections::BTreeMap;
use std::path::Path;

use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;
use ndarray::{Array1, Array2};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use serde::{Deserialize, Serialize};

use super::anchor::{Anchor, AnchoredMap};
use super::dipnet::{DipNet, InputBasis, ReducedCoordinates};
use super::loss::Loss;
use super::mlp::{Mlp, MlpShape};
use super::settings::{StopReason, TrainSettings};
use crate::data::ControlRegion;
use crate::error::{Error, Result};
use crate::io::{checksum, write_atomic};
use crate::map::DifferentiableMap;
use crate::problem::Problem;

/// Format tag of model.json.
pub const MODEL_FORMAT: &str = "dino-surrogate-1";

/// `architecture.input_basis` of a network on the full input (E = V = I, no files).
pub const IDENTITY_BASIS: &str = "identity";

/// The problem a surrogate was trained for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedFor {
    pub file: String,
    pub hash: String,
    pub model: String,
    /// d_M (d_M + n_z for a control surrogate, whose input is (m, z))
    pub input_dim: usize,
    /// d_Q (d_U, the nodal state, for a control surrogate)
    pub output_dim: usize,
    /// n_z for a control surrogate (MR-DINO); absent for a surrogate of m ↦ q.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_dim: Option<usize>,
}

/// Architecture: φ's shape and the bases around it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Architecture {
    /// "dipnet", "generic" (DIPNet with the identity input basis), "mr-dino".
    pub kind: String,
    pub mlp: MlpShape,
    /// Kind of the input basis (active-subspace, kle, identity).
    pub input_basis: String,
    /// Kind of the output basis (pod, identity).
    pub output_basis: String,
}

/// Normalization statistics of the network inputs and outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub input_mean: Vec<f64>,
    pub input_std: Vec<f64>,
    pub output_mean: Vec<f64>,
    pub output_std: Vec<f64>,
}

/// How the model was trained.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingRecord {
    pub loss: Loss,
    pub settings: TrainSettings,
    pub data: Vec<String>,
    pub training_samples: usize,
    pub validation_samples: usize,
    pub epochs_run: usize,
    pub best_epoch: Option<usize>,
    pub stop: StopReason,
    /// Training wall time, summed over the `--init` stages that led to this model.
    pub wall_s: f64,
    /// Wall time of generating the training data (from its manifest), for break-even analyses.
    pub data_wall_s: f64,
    /// The command line that produced the model.
    pub command: String,
    /// For a control surrogate trained on data drawn around a control (`dino generate --control
    /// --control-around`): that region. The surrogate is only trustworthy inside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_region: Option<ControlRegion>,
}

/// Test metrics (see `dino eval`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub samples: usize,
    /// 1 − sqrt(E[‖q − f‖² / ‖q‖²])
    pub l2_accuracy: f64,
    /// 1 − sqrt(E[‖J − ∇f‖²_F / ‖J‖²_F]) against full Jacobians
    pub h1_accuracy: Option<f64>,
    /// the same for the reduced Jacobian Uᵀ J V in the model's bases
    pub reduced_h1_accuracy: Option<f64>,
    /// 1 − E[‖q − f‖ / ‖q‖] (paper eq. 3.6)
    pub l2_accuracy_mean_relative: f64,
    pub h1_accuracy_mean_relative: Option<f64>,
    pub reduced_h1_accuracy_mean_relative: Option<f64>,
}

/// The contents of model.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelRecord {
    pub format: String,
    pub architecture: Architecture,
    pub problem: TrainedFor,
    pub normalization: Normalization,
    pub training: Option<TrainingRecord>,
    pub test_metrics: Option<Metrics>,
    /// File name → checksum (FNV-1a 64).
    pub files: BTreeMap<String, String>,
    /// The network is the residual of a linearization of the exact map, stored in
    /// `anchor_point.npy`, `anchor_value.npy`, `anchor_jacobian.npy` (see [`Anchor`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anchored: bool,
}

impl ModelRecord {
    /// The record of a model not yet trained or evaluated (normalization and file checksums are
    /// filled in by [`Surrogate::save`]).
    pub fn new(architecture: Architecture, problem: TrainedFor) -> Self {
        ModelRecord {
            format: MODEL_FORMAT.to_string(),
            architecture,
            problem,
            normalization: Normalization {
                input_mean: vec![],
                input_std: vec![],
                output_mean: vec![],
                output_std: vec![],
            },
            training: None,
            test_metrics: None,
            files: BTreeMap::new(),
            anchored: false,
        }
    }
}

impl TrainedFor {
    /// The record of a problem with the model's dimensions.
    pub fn new(problem: &Problem, input_dim: usize, output_dim: usize) -> Result<Self> {
        Ok(TrainedFor {
            file: problem.path.display().to_string(),
            hash: problem.hash(),
            model: problem.model()?.name().to_string(),
            input_dim,
            output_dim,
            control_dim: None,
        })
    }

    /// The record of a control problem for a surrogate of (m, z) ↦ u.
    pub fn control(problem: &Problem) -> Result<Self> {
        let model = problem.control_problem()?;
        let (d_m, n_z) = (
            crate::map::ControlledMap::parameter_dim(&model),
            crate::map::ControlledMap::control_dim(&model),
        );
        Ok(TrainedFor {
            file: problem.path.display().to_string(),
            hash: problem.hash(),
            model: format!(
                "{} with control",
                crate::models::PdeModel::name(model.model())
            ),
            input_dim: d_m + n_z,
            output_dim: crate::map::ControlledMap::output_dim(&model),
            control_dim: Some(n_z),
        })
    }
}

/// A loaded surrogate: the network, its record, and the linearization it is anchored at (if any).
#[derive(Debug, Clone)]
pub struct Surrogate {
    pub net: DipNet,
    pub record: ModelRecord,
    pub anchor: Option<Anchor>,
}

impl Surrogate {
    /// The surrogate as a map: the network, or the network plus its anchor (built in `slot`,
    /// which must outlive the returned reference).
    pub fn map<'a>(&'a self, slot: &'a mut Option<AnchoredMap<'a>>) -> &'a dyn DifferentiableMap {
        match &self.anchor {
            Some(anchor) => slot.insert(AnchoredMap {
                network: &self.net,
                anchor,
            }),
            None => &self.net,
        }
    }

    /// Refuses a problem other than the one the model was trained for.
    pub fn check_problem(&self, problem: &Problem, dir: &Path) -> Result<()> {
        let p = &self.record.problem;
        if p.hash != problem.hash() {
            return Err(Error::invalid(
                dir.join("model.json").display().to_string(),
                "problem.hash",
                format!(
                    "the hash of {} ({}): this surrogate was trained for {} ({})",
                    problem.path.display(),
                    problem.hash(),
                    p.file,
                    p.hash
                ),
                &p.hash,
            ));
        }
        let n_z = problem
            .spec
            .control
            .as_ref()
            .map(|_| problem.control_problem())
            .transpose()?
            .map(|c| crate::map::ControlledMap::control_dim(&c));
        let d_m = problem.mesh().num_vertices();
        let (d_m, d_q) = match (p.control_dim, n_z) {
            (Some(_), Some(n_z)) => (d_m + n_z, d_m),
            (Some(_), None) => {
                return Err(Error::invalid(
                    dir.join("model.json").display().to_string(),
                    "problem.control_dim",
                    format!(
                        "none: {} has no [control] section, and this is a control surrogate",
                        problem.path.display()
                    ),
                    "a control surrogate",
                ))
            }
            // an external model's output size is the server's; the hash pins its URL and name
            (None, _) if problem.is_external() => (d_m, p.output_dim),
            (None, _) => (d_m, problem.observation_points().len()),
        };
        if (p.input_dim, p.output_dim) != (d_m, d_q) {
            return Err(Error::invalid(
                dir.join("model.json").display().to_string(),
                "problem.input_dim / output_dim",
                format!("({d_m}, {d_q}) as in {}", problem.path.display()),
                format!("({}, {})", p.input_dim, p.output_dim),
            ));
        }
        Ok(())
    }

    /// Writes the model folder (each file atomically; model.json last).
    pub fn save(
        mlp: &Mlp,
        record: &ModelRecord,
        coords: &ReducedCoordinates,
        dir: &Path,
    ) -> Result<()> {
        Self::save_anchored(mlp, record, coords, None, dir)
    }

    /// [`Self::save`] for a network anchored at a linearization.
    pub fn save_anchored(
        mlp: &Mlp,
        record: &ModelRecord,
        coords: &ReducedCoordinates,
        anchor: Option<&Anchor>,
        dir: &Path,
    ) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut record = record.clone();
        record.normalization = Normalization {
            input_mean: coords.input_mean.to_vec(),
            input_std: coords.input_std.to_vec(),
            output_mean: coords.output_mean.to_vec(),
            output_std: coords.output_std.to_vec(),
        };
        let mut files = BTreeMap::new();
        let mut put = |name: &str, bytes: Vec<u8>| -> Result<()> {
            write_atomic(dir.join(name), |w| w.write_all(&bytes))?;
            files.insert(name.to_string(), checksum::hex(&bytes));
            Ok(())
        };
        put("weights.safetensors", weight_bytes(mlp, dir)?)?;
        let npy2 = |a: &Array2<f64>| {
            let mut b = Vec::new();
            a.write_npy(&mut b).map(|_| b)
        };
        let npy1 = |a: &Array1<f64>| {
            let mut b = Vec::new();
            a.write_npy(&mut b).map(|_| b)
        };
        let io = |e: ndarray_npy::WriteNpyError| Error::io(dir, std::io::Error::other(e));
        if let InputBasis::Reduced { encoder, decoder } = &coords.input_basis {
            put("encoder.npy", npy2(encoder).map_err(io)?)?;
            put("decoder.npy", npy2(decoder).map_err(io)?)?;
        }
        put("output_basis.npy", npy2(&coords.output_basis).map_err(io)?)?;
        put("input_shift.npy", npy1(&coords.input_shift).map_err(io)?)?;
        put("output_shift.npy", npy1(&coords.output_shift).map_err(io)?)?;
        if let Some(a) = anchor {
            put("anchor_point.npy", npy1(&a.point).map_err(io)?)?;
            put("anchor_value.npy", npy1(&a.value).map_err(io)?)?;
            put("anchor_jacobian.npy", npy2(&a.jacobian).map_err(io)?)?;
        }
        record.anchored = anchor.is_some();
        record.files = files;
        record.format = MODEL_FORMAT.to_string();
        write_json(&dir.join("model.json"), &record)
    }

    /// Rewrites model.json only (e.g. to record test metrics).
    pub fn save_record(&self, dir: &Path) -> Result<()> {
        write_json(&dir.join("model.json"), &self.record)
    }

    /// Loads a model folder, verifying every file.
    pub fn load(dir: &Path) -> Result<Surrogate> {
        let meta = dir.join("model.json");
        let text = std::fs::read_to_string(&meta).map_err(|e| Error::io(&meta, e))?;
        let record: ModelRecord = serde_json::from_str(&text)
            .map_err(|e| Error::parse(&meta, format!("not a dino model description: {e}")))?;
        if record.format != MODEL_FORMAT {
            return Err(Error::invalid(
                meta.display().to_string(),
                "format",
                MODEL_FORMAT,
                &record.format,
            ));
        }
        let read = |name: &str| -> Result<Vec<u8>> {
            let path = dir.join(name);
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            let expected = record.files.get(name).ok_or_else(|| {
                Error::invalid(
                    meta.display().to_string(),
                    format!("files.{name}"),
                    "a checksum",
                    "none",
                )
            })?;
            if &checksum::hex(&bytes) != expected {
                return Err(Error::invalid(
                    path.display().to_string(),
                    "checksum",
                    format!("{expected} as recorded in model.json (the file is truncated or was modified)"),
                    checksum::hex(&bytes),
                ));
            }
            Ok(bytes)
        };
        let (d_m, d_q) = (record.problem.input_dim, record.problem.output_dim);
        let shape = record.architecture.mlp;
        let (r_m, r_q) = (shape.input, shape.output);
        let identity = record.architecture.input_basis == IDENTITY_BASIS;
        if identity && r_m != d_m {
            return Err(Error::invalid(
                meta.display().to_string(),
                "architecture.mlp.input",
                format!("d_M = {d_m} for the identity input basis"),
                r_m,
            ));
        }
        let read2 = |name: &str, rows: usize, cols: usize| -> Result<Array2<f64>> {
            let bytes = read(name)?;
            let path = dir.join(name);
            let a = Array2::<f64>::read_npy(&bytes[..])
                .map_err(|e| Error::parse(&path, format!("expected a 2-D float64 array: {e}")))?;
            if a.dim() != (rows, cols) {
                return Err(Error::invalid(
                    path.display().to_string(),
                    name,
                    format!("shape ({rows}, {cols})"),
                    format!("{:?}", a.dim()),
                ));
            }
            Ok(a)
        };
        let read1 = |name: &str, len: usize| -> Result<Array1<f64>> {
            let bytes = read(name)?;
            let path = dir.join(name);
            let a = Array1::<f64>::read_npy(&bytes[..])
                .map_err(|e| Error::parse(&path, format!("expected a 1-D float64 array: {e}")))?;
            if a.len() != len {
                return Err(Error::invalid(
                    path.display().to_string(),
                    name,
                    format!("length {len}"),
                    a.len(),
                ));
            }
            Ok(a)
        };
        let n = &record.normalization;
        for (field, v, len) in [
            ("normalization.input_mean", &n.input_mean, r_m),
            ("normalization.input_std", &n.input_std, r_m),
            ("normalization.output_mean", &n.output_mean, r_q),
            ("normalization.output_std", &n.output_std, r_q),
        ] {
            if v.len() != len || v.iter().any(|x| !x.is_finite()) {
                return Err(Error::invalid(
                    meta.display().to_string(),
                    field,
                    format!("{len} finite numbers"),
                    format!("{} values", v.len()),
                ));
            }
        }
        let input_basis = if identity {
            InputBasis::Identity { dim: d_m }
        } else {
            InputBasis::reduced(
                read2("encoder.npy", d_m, r_m)?,
                read2("decoder.npy", d_m, r_m)?,
            )
        };
        let coordinates = ReducedCoordinates {
            input_basis,
            input_shift: read1("input_shift.npy", d_m)?,
            output_basis: read2("output_basis.npy", d_q, r_q)?,
            output_shift: read1("output_shift.npy", d_q)?,
            input_mean: Array1::from(n.input_mean.clone()),
            input_std: Array1::from(n.input_std.clone()),
            output_mean: Array1::from(n.output_mean.clone()),
            output_std: Array1::from(n.output_std.clone()),
        };
        let anchor = match record.anchored {
            true => Some(Anchor {
                point: read1("anchor_point.npy", d_m)?,
                value: read1("anchor_value.npy", d_q)?,
                jacobian: read2("anchor_jacobian.npy", d_q, d_m)?,
            }),
            false => None,
        };
        let weights = read("weights.safetensors")?;
        let mlp = load_weights(
            shape,
            weights,
            &dir.join("weights.safetensors"),
            &Device::flex(),
        )?;
        Ok(Surrogate {
            net: DipNet::new(&mlp, coordinates),
            record,
            anchor,
        })
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("serializable record");
    write_atomic(path, |w| w.write_all(text.as_bytes()))
}

/// φ's weights in safetensors format (burn's store).
pub fn weight_bytes(mlp: &Mlp, dir: &Path) -> Result<Vec<u8>> {
    let mut store = SafetensorsStore::from_bytes(None);
    mlp.save_into(&mut store)
        .map_err(|e| Error::io(dir, std::io::Error::other(e.to_string())))?;
    store
        .get_bytes()
        .map_err(|e| Error::io(dir, std::io::Error::other(e.to_string())))
}

/// An MLP of `shape` with the weights of a safetensors file's bytes.
pub fn load_weights(shape: MlpShape, bytes: Vec<u8>, path: &Path, device: &Device) -> Result<Mlp> {
    let mut mlp = Mlp::new(shape, 0, device);
    let mut store = SafetensorsStore::from_bytes(Some(bytes));
    let result = mlp.load_from(&mut store).map_err(|e| {
        Error::parse(
            path,
            format!("weights do not fit the architecture {shape:?} of model.json: {e}"),
        )
    })?;
    if !result.errors.is_empty() || !result.missing.is_empty() {
        let mut problems: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
        problems.extend(
            result
                .missing
                .iter()
                .map(|(k, _)| format!("missing tensor {k}")),
        );
        return Err(Error::parse(
            path,
            format!(
                "weights do not fit the architecture {shape:?} of model.json: {}",
                problems.join("; ")
            ),
        ));
    }
    Ok(mlp)
}
