//! An append-only file of f64 rows (little-endian, `width` values a row, no header): the traces
//! of a long run (MCMC quantities of interest, saved states). Rows are appended and synced after
//! each checkpoint; on resume the file is cut back to the rows the checkpoint counts, dropping
//! those appended after it.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// An append-only rows file.
#[derive(Debug, Clone)]
pub struct RowsFile {
    path: PathBuf,
    width: usize,
}

impl RowsFile {
    /// The rows file at `path` with `width` f64 values a row (nothing is opened yet).
    pub fn new(path: impl Into<PathBuf>, width: usize) -> Self {
        RowsFile {
            path: path.into(),
            width,
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn row_bytes(&self) -> u64 {
        (self.width * 8) as u64
    }

    /// Cuts the file to its first `rows` rows (the checkpoint's count); `None` when it is missing
    /// or holds fewer (the checkpoint cannot be resumed from this file).
    pub fn truncate_to(&self, rows: usize) -> Option<()> {
        let need = rows as u64 * self.row_bytes();
        let len = std::fs::metadata(&self.path).ok()?.len();
        if len < need {
            return None;
        }
        if len > need {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&self.path)
                .ok()?;
            file.set_len(need).ok()?;
        }
        Some(())
    }

    /// Empties the file (creating it): a run that starts from no checkpoint.
    pub fn clear(&self) -> Result<()> {
        std::fs::File::create(&self.path)
            .map(drop)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Appends rows (flat: a multiple of `width` values) and syncs the file.
    pub fn append(&self, values: &[f64]) -> Result<()> {
        debug_assert!(self.width == 0 || values.len() % self.width == 0);
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        file.write_all(&bytes)
            .and_then(|_| file.sync_data())
            .map_err(|e| Error::io(&self.path, e))
    }

    /// The first `rows` rows, flat; an error naming the file when it holds fewer.
    pub fn read(&self, rows: usize) -> Result<Vec<f64>> {
        let bytes = std::fs::read(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let need = rows * self.width * 8;
        if bytes.len() < need {
            return Err(Error::invalid(
                self.path.display().to_string(),
                "rows",
                format!("{rows} rows of {} float64", self.width),
                format!("{} bytes", bytes.len()),
            ));
        }
        Ok(bytes[..need]
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_then_truncate_to_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let rows = RowsFile::new(dir.path().join("chain_0.qoi"), 2);
        assert!(rows.truncate_to(0).is_none(), "missing file");
        rows.append(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        rows.append(&[5.0, 6.0]).unwrap();
        assert_eq!(rows.read(3).unwrap(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        // the checkpoint counted 2 rows: the third (written after it) is dropped
        rows.truncate_to(2).unwrap();
        assert_eq!(std::fs::metadata(rows.path()).unwrap().len(), 32);
        assert!(
            rows.truncate_to(3).is_none(),
            "fewer rows than the checkpoint"
        );
        let err = rows.read(3).unwrap_err().to_string();
        assert!(err.contains("chain_0.qoi"), "{err}");
        rows.append(&[7.0, 8.0]).unwrap();
        assert_eq!(rows.read(3).unwrap()[4..], [7.0, 8.0]);
    }
}
