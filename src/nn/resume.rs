//! Mid-run training state, so that an interrupted `dino train` continues at the next epoch with
//! exactly the network, Adam moments, learning-rate position and log it had (the result equals an
//! uninterrupted run bit for bit: sample orders and subsampling blocks are drawn per epoch from
//! the seed).
//!
//! A resume folder holds `state.json` (fingerprint, next epoch, log, best epoch and score) and the
//! burnpack files it names: `network-E.bpk` (the current network, with burn's parameter ids, which
//! key the optimizer state), `optimizer-E.bpk` (Adam's moments) and `best-B.bpk` (the best network
//! so far). Every file is written atomically and `state.json` last, so a crash at any point leaves
//! a consistent state; files the new `state.json` no longer names are removed afterwards.

use std::path::{Path, PathBuf};

use burn::optim::{ModuleOptimizer, OptimizerRecord};
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use super::loss::Loss;
use super::mlp::Mlp;
use super::samples::Samples;
use super::settings::{EpochRecord, TrainSettings};
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::store::Fingerprint;

/// What `state.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ResumeState {
    fingerprint: String,
    next_epoch: usize,
    history: Vec<EpochRecord>,
    /// (score, epoch) of the best network so far.
    best: Option<(f64, usize)>,
    network: String,
    optimizer: String,
    best_network: Option<String>,
}

/// A training run restored from a resume folder.
pub struct ResumePoint {
    pub mlp: Mlp,
    pub optimizer: ModuleOptimizer,
    pub next_epoch: usize,
    pub history: Vec<EpochRecord>,
    /// (score, epoch, network) of the best network so far.
    pub best: Option<(f64, usize, Mlp)>,
}

/// Identifies a training run: settings, loss, the initial network (shapes and weights) and a
/// checksum of the data.
pub fn fingerprint(
    mlp: &Mlp,
    train: &Samples,
    validation: Option<&Samples>,
    loss: Loss,
    settings: &TrainSettings,
) -> String {
    let mut bytes: Vec<u8> = Vec::new();
    for s in std::iter::once(train).chain(validation) {
        bytes.extend(s.count.to_le_bytes());
        bytes.extend(s.x.iter().chain(&s.q).flat_map(|v| v.to_le_bytes()));
        if let Some(j) = &s.jacobian {
            bytes.extend(j.iter().flat_map(|v| v.to_le_bytes()));
        }
    }
    let layers = mlp.weights();
    for (w, b, _, _) in &layers {
        bytes.extend(w.iter().chain(b).flat_map(|v| v.to_le_bytes()));
    }
    let shapes: Vec<(usize, usize)> = layers.iter().map(|l| (l.2, l.3)).collect();
    /// What a training state depends on.
    #[derive(serde::Serialize)]
    struct RunKey<'a> {
        settings: &'a TrainSettings,
        loss: Loss,
        shapes: Vec<(usize, usize)>,
        /// The data and initial weights.
        bytes: Fingerprint,
    }
    let key = RunKey {
        settings,
        loss,
        shapes,
        bytes: Fingerprint::of_bytes(&bytes),
    };
    Fingerprint::of(&key).to_string()
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(path, std::io::Error::other(e.to_string()))
}

fn network_bytes(mlp: &Mlp, path: &Path) -> Result<Vec<u8>> {
    let mut store = BurnpackStore::from_bytes(None);
    mlp.save_into(&mut store).map_err(|e| io_error(path, e))?;
    Ok(store.get_bytes().map_err(|e| io_error(path, e))?.to_vec())
}

fn read_network(template: Mlp, path: &Path) -> Result<Mlp> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(bytes)));
    let mut mlp = template;
    let result = mlp
        .load_from(&mut store)
        .map_err(|e| Error::parse(path, format!("not a network of this architecture: {e}")))?;
    if !result.errors.is_empty() || !result.missing.is_empty() {
        return Err(Error::parse(path, "not a network of this architecture"));
    }
    Ok(mlp)
}

/// Loads the resume point in `dir` if it exists and belongs to this run (same fingerprint);
/// `template` is a network of the right architecture. A folder of another run is ignored with
/// a message (it is overwritten by the next save).
pub fn load(
    dir: &Path,
    fingerprint: &str,
    template: impl Fn() -> Mlp,
) -> Result<Option<ResumePoint>> {
    let state_path = dir.join("state.json");
    let Ok(text) = std::fs::read_to_string(&state_path) else {
        return Ok(None);
    };
    let state: ResumeState =
        serde_json::from_str(&text).map_err(|e| Error::parse(&state_path, e))?;
    if state.fingerprint != fingerprint {
        eprintln!(
            "note: {} is the state of a run with other settings or data; starting afresh",
            dir.display()
        );
        return Ok(None);
    }
    let mlp = read_network(template(), &dir.join(&state.network))?;
    let optimizer_path = dir.join(&state.optimizer);
    let bytes = std::fs::read(&optimizer_path).map_err(|e| Error::io(&optimizer_path, e))?;
    let record = OptimizerRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| Error::parse(&optimizer_path, format!("not an optimizer state: {e}")))?;
    let optimizer = burn::optim::AdamConfig::new().init().load_record(record);
    let best = match (state.best, &state.best_network) {
        (Some((score, epoch)), Some(file)) => {
            Some((score, epoch, read_network(template(), &dir.join(file))?))
        }
        _ => None,
    };
    Ok(Some(ResumePoint {
        mlp,
        optimizer,
        next_epoch: state.next_epoch,
        history: state.history,
        best,
    }))
}

/// Where a run checkpoints its state, and what it last wrote.
pub struct ResumeWriter {
    dir: PathBuf,
    fingerprint: String,
    best_network: Option<String>,
}

impl ResumeWriter {
    /// A writer into `dir` (created), continuing from a loaded state's best-network file.
    pub fn new(dir: &Path, fingerprint: String, resumed_best_epoch: Option<usize>) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        Ok(ResumeWriter {
            dir: dir.to_path_buf(),
            fingerprint,
            best_network: resumed_best_epoch.map(|e| format!("best-{e}.bpk")),
        })
    }

    /// Records the state after `epoch` (the next run starts at epoch + 1); `new_best` is the
    /// network when this epoch improved on the best.
    pub fn save(
        &mut self,
        epoch: usize,
        mlp: &Mlp,
        optimizer: &ModuleOptimizer,
        history: &[EpochRecord],
        best: Option<(f64, usize)>,
        new_best: Option<&Mlp>,
    ) -> Result<()> {
        let write = |name: &str, bytes: &[u8]| {
            write_atomic(self.dir.join(name), |w| std::io::Write::write_all(w, bytes))
        };
        let network = format!("network-{epoch}.bpk");
        write(&network, &network_bytes(mlp, &self.dir)?)?;
        let optimizer_file = format!("optimizer-{epoch}.bpk");
        let record = optimizer
            .to_record()
            .into_bytes()
            .map_err(|e| io_error(&self.dir, e))?;
        write(&optimizer_file, &record)?;
        if let Some(m) = new_best {
            let name = format!("best-{epoch}.bpk");
            write(&name, &network_bytes(m, &self.dir)?)?;
            self.best_network = Some(name);
        }
        let state = ResumeState {
            fingerprint: self.fingerprint.clone(),
            next_epoch: epoch + 1,
            history: history.to_vec(),
            best,
            network: network.clone(),
            optimizer: optimizer_file.clone(),
            best_network: self.best_network.clone(),
        };
        write(
            "state.json",
            serde_json::to_string(&state)
                .expect("serializable")
                .as_bytes(),
        )?;
        // remove what the new state no longer names
        let keep = [
            Some(network),
            Some(optimizer_file),
            self.best_network.clone(),
        ];
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                if name.ends_with(".bpk") && !keep.iter().flatten().any(|k| *k == name) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(())
    }

    /// Removes the folder once training has finished.
    pub fn finish(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
