//! File formats: `.npy` arrays, `.vtu` fields, and atomic writes.

pub mod atomic;
pub mod checksum;
pub mod npy;
pub mod vtu;

pub use atomic::write_atomic;
