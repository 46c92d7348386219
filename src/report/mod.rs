//! Reports: plots users can look at.

pub mod field;
pub mod inference;
pub mod ouu;
pub mod solve;
pub mod study;
pub mod svg;
pub mod training;

use std::path::Path;

/// Writes `text` to `path` atomically.
pub fn write_text(path: &Path, text: &str) -> crate::error::Result<()> {
    crate::io::write_atomic(path, |w| w.write_all(text.as_bytes()))
}
