//! Chain checkpoints: the state `chain_C.json` (a [`ChainState`] without its QoI trace), beside
//! it the append-only QoI trace `chain_C.qoi` and the saved states `chain_C.samples` (rows of
//! little-endian f64). A state never counts rows that are not on disk: rows are appended and
//! synced first, the state is written atomically after, and a resumed chain cuts the files
//! back to the rows its state counts.

use std::path::{Path, PathBuf};

use super::{ChainState, McmcSettings};
use crate::error::{Error, Result};
use crate::io::write_atomic;

/// The state file of chain `c` in `dir`.
pub(super) fn state_path(dir: &Path, c: usize) -> PathBuf {
    dir.join(format!("chain_{c}.json"))
}

/// The checkpoint of chain `c` in `dir` when it was started with `fingerprint` and the same
/// `sample_every`, with its QoI trace of `width` values per post-burn-in step read back and
/// both row files cut to what the state counts; `None` when there is none (or it is unusable).
pub(super) fn resume(
    path: &Path,
    fingerprint: &str,
    settings: &McmcSettings,
    width: usize,
) -> Option<ChainState> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut s = serde_json::from_str::<ChainState>(&text).ok()?;
    if s.fingerprint != fingerprint || s.sample_every != settings.sample_every {
        return None;
    }
    let rows = s.steps.saturating_sub(settings.burn_in);
    s.qoi = read_qoi_trace(&qoi_trace_path(path), rows, width)?;
    if settings.sample_every > 0 {
        let saved = saved_sample_rows(s.steps, settings);
        cut_rows(&samples_path(path), saved, s.m.len())?;
    }
    Some(s)
}

/// The writer of one chain's checkpoint: what of the QoI trace and the saved states is on disk.
pub(super) struct Checkpoint<'a> {
    path: &'a Path,
    sample_every: usize,
    /// QoI rows already in the trace file.
    rows_written: usize,
    /// Saved states not yet on disk (flat rows of d_M).
    pending_samples: Vec<f64>,
}

impl<'a> Checkpoint<'a> {
    /// Opens the checkpoint of a chain at `path`; a new chain (no QoI rows yet) starts empty
    /// trace and samples files.
    pub(super) fn open(path: &'a Path, s: &ChainState, settings: &McmcSettings) -> Result<Self> {
        let rows_written = s.qoi.len();
        if rows_written == 0 {
            let trace = qoi_trace_path(path);
            if let Some(dir) = trace.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            std::fs::File::create(&trace).map_err(|e| Error::io(&trace, e))?;
            if settings.sample_every > 0 {
                let samples = samples_path(path);
                std::fs::File::create(&samples).map_err(|e| Error::io(&samples, e))?;
            }
        }
        Ok(Checkpoint {
            path,
            sample_every: settings.sample_every,
            rows_written,
            pending_samples: Vec::new(),
        })
    }

    /// Keeps a state to save with the next [`Self::write`].
    pub(super) fn save_sample(&mut self, m: &[f64]) {
        self.pending_samples.extend_from_slice(m);
    }

    /// Writes the new trace rows and saved states, then the state.
    pub(super) fn write(&mut self, s: &ChainState) -> Result<()> {
        append_rows(
            &qoi_trace_path(self.path),
            &s.qoi[self.rows_written..].concat(),
        )?;
        self.rows_written = s.qoi.len();
        if self.sample_every > 0 {
            append_rows(&samples_path(self.path), &self.pending_samples)?;
            self.pending_samples.clear();
        }
        let text = serde_json::to_string(s).expect("serializable chain");
        write_atomic(self.path, |w| std::io::Write::write_all(w, text.as_bytes()))
    }
}

/// `chain_C.qoi` beside the state file `chain_C.json`.
fn qoi_trace_path(state: &Path) -> PathBuf {
    state.with_extension("qoi")
}

/// `chain_C.samples` beside the state file `chain_C.json`: the saved states.
fn samples_path(state: &Path) -> PathBuf {
    state.with_extension("samples")
}

/// States saved after `steps` steps: every `sample_every`-th post-burn-in step.
fn saved_sample_rows(steps: usize, settings: &McmcSettings) -> usize {
    match settings.sample_every {
        0 => 0,
        k => steps.saturating_sub(settings.burn_in) / k,
    }
}

/// The states the chains saved (`McmcSettings::sample_every`), chain after chain: one row of
/// d_M per saved state, from the `chain_C.samples` files in `checkpoint_dir`.
pub fn read_saved_samples(
    checkpoint_dir: &Path,
    chains: &[ChainState],
    settings: &McmcSettings,
) -> Result<ndarray::Array2<f64>> {
    let d = chains.first().map_or(0, |c| c.m.len());
    let mut values = Vec::new();
    let mut rows = 0;
    for c in chains {
        let path = samples_path(&state_path(checkpoint_dir, c.chain));
        let n = saved_sample_rows(c.steps, settings);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        if bytes.len() < n * d * 8 {
            return Err(Error::invalid(
                path.display().to_string(),
                "saved samples",
                format!("{n} rows of {d} float64"),
                format!("{} bytes", bytes.len()),
            ));
        }
        values.extend(
            bytes[..n * d * 8]
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))),
        );
        rows += n;
    }
    Ok(ndarray::Array2::from_shape_vec((rows, d), values).expect("rows × d values"))
}

/// Appends rows (flat, little-endian f64) to a trace or samples file and syncs it.
fn append_rows(path: &Path, values: &[f64]) -> Result<()> {
    use std::io::Write;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    file.write_all(&bytes)
        .and_then(|_| file.sync_data())
        .map_err(|e| Error::io(path, e))
}

/// The first `rows` rows of `width` values of a trace file, which is cut to them (rows appended
/// after the last state was written are dropped); `None` when the file holds fewer.
fn read_qoi_trace(path: &Path, rows: usize, width: usize) -> Option<Vec<Vec<f64>>> {
    cut_rows(path, rows, width)?;
    let bytes = std::fs::read(path).ok()?;
    let values: Vec<f64> = bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    Some(values.chunks(width).map(<[f64]>::to_vec).collect())
}

/// Cuts a file of f64 rows of `width` to its first `rows` rows (rows appended after the last
/// state was written are dropped); `None` when it is missing or holds fewer.
fn cut_rows(path: &Path, rows: usize, width: usize) -> Option<()> {
    let need = (rows * width * 8) as u64;
    let len = std::fs::metadata(path).ok()?.len();
    if len < need {
        return None;
    }
    if len > need {
        let file = std::fs::OpenOptions::new().write(true).open(path).ok()?;
        file.set_len(need).ok()?;
    }
    Some(())
}
