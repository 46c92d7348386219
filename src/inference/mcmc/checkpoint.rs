//! Chain checkpoints: the state `chain_C.json` (a [`ChainState`] without its QoI trace), beside
//! it the append-only QoI trace `chain_C.qoi` and the saved states `chain_C.samples` (rows of
//! little-endian f64). A state never counts rows that are not on disk: rows are appended and
//! synced first, the state is written atomically after, and a resumed chain cuts the files
//! back to the rows its state counts.

use std::path::{Path, PathBuf};

use super::{ChainState, McmcSettings};
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::store::RowsFile;

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
    let trace = qoi_trace(path, width);
    trace.truncate_to(rows)?;
    s.qoi = match width {
        0 => vec![vec![]; rows],
        w => trace
            .read(rows)
            .ok()?
            .chunks(w)
            .map(<[f64]>::to_vec)
            .collect(),
    };
    if settings.sample_every > 0 {
        let saved = saved_sample_rows(s.steps, settings);
        saved_states(path, s.m.len()).truncate_to(saved)?;
    }
    Some(s)
}

/// The writer of one chain's checkpoint: what of the QoI trace and the saved states is on disk.
pub(super) struct Checkpoint<'a> {
    path: &'a Path,
    trace: RowsFile,
    samples: RowsFile,
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
        let width = s.qoi.first().map_or(0, Vec::len);
        let (trace, samples) = (qoi_trace(path, width), saved_states(path, s.m.len()));
        if rows_written == 0 {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            trace.clear()?;
            if settings.sample_every > 0 {
                samples.clear()?;
            }
        }
        Ok(Checkpoint {
            path,
            trace,
            samples,
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
        self.trace.append(&s.qoi[self.rows_written..].concat())?;
        self.rows_written = s.qoi.len();
        if self.sample_every > 0 {
            self.samples.append(&self.pending_samples)?;
            self.pending_samples.clear();
        }
        let text = serde_json::to_string(s).expect("serializable chain");
        write_atomic(self.path, |w| std::io::Write::write_all(w, text.as_bytes()))
    }
}

/// `chain_C.qoi` beside the state file `chain_C.json`: one row of `width` QoIs per
/// post-burn-in step.
fn qoi_trace(state: &Path, width: usize) -> RowsFile {
    RowsFile::new(state.with_extension("qoi"), width)
}

/// `chain_C.samples` beside the state file `chain_C.json`: the saved states (rows of d_M).
fn saved_states(state: &Path, d_m: usize) -> RowsFile {
    RowsFile::new(state.with_extension("samples"), d_m)
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
        let n = saved_sample_rows(c.steps, settings);
        values.extend(saved_states(&state_path(checkpoint_dir, c.chain), d).read(n)?);
        rows += n;
    }
    Ok(ndarray::Array2::from_shape_vec((rows, d), values).expect("rows × d values"))
}
