//! One store for provenance and checkpoints, shared by data generation, control data, training
//! and MCMC chains:
//! - [`Fingerprint`]: a stable hash of settings (any `Serialize` value) or bytes, and
//!   [`check_same_settings`], which names the file and the first setting that differs;
//! - [`check_made_for`]: "was this file made for this problem?" (recorded problem hash vs the
//!   problem's, naming the file and the field);
//! - [`ChunkStore`]: resumable chunked rows: each chunk's files written atomically, then a
//!   checksummed chunk record whose presence marks the chunk complete; on restart the chunks
//!   whose records and checksums verify are kept and the rest redone;
//! - [`RowsFile`]: an append-only file of f64 rows (traces), cut back to the last checkpoint on
//!   resume.

pub mod chunks;
pub mod fingerprint;
pub mod provenance;
pub mod rows;

pub use chunks::{Chunk, ChunkFiles, ChunkStore, FileRecord, Stored};
pub use fingerprint::{check_same_settings, differences, Fingerprint};
pub use provenance::check_made_for;
pub use rows::RowsFile;
