//! Atomic file writes: write to a temporary file beside the target, flush, then rename.
//! A reader never sees a half-written file, and an interrupted writer leaves the old file intact.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // unique per process and per write, so concurrent writers of one path never share a temp file
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let k = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}-{k}.tmp", std::process::id()))
}

/// Writes `path` atomically with the bytes produced by `write`, creating missing parent folders.
pub fn write_atomic(
    path: impl AsRef<Path>,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let path = path.as_ref();
    let tmp = temp_path(path);
    let result = (|| {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file = File::create(&tmp)?;
        let mut w = LimitedWriter {
            inner: BufWriter::new(file),
            left: simulated_capacity(),
        };
        write(&mut w)?;
        let file = w.inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Bytes a single write may take before failing with "storage full": the value of the
/// environment variable `DINO_SIMULATE_DISK_FULL_AFTER`, for testing how jobs survive a full disk.
fn simulated_capacity() -> Option<u64> {
    std::env::var("DINO_SIMULATE_DISK_FULL_AFTER")
        .ok()?
        .parse()
        .ok()
}

struct LimitedWriter<W> {
    inner: W,
    left: Option<u64>,
}

impl<W: Write> Write for LimitedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(left) = self.left.as_mut() {
            if buf.len() as u64 > *left {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "no space left on device (simulated)",
                ));
            }
            *left -= buf.len() as u64;
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_file_and_leaves_nothing_behind_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/a.txt");
        write_atomic(&path, |w| w.write_all(b"hello")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
        // a writer that fails keeps the old content and removes its temporary file
        let err = write_atomic(&path, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(err.unwrap_err().to_string().contains("a.txt"));
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }
}
