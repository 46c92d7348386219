//! Training data: chunked, resumable, shardable generation of (m, q, J) samples and their loading.

pub mod control;
pub mod dataset;
pub mod generate;
pub mod manifest;

pub use control::{generate_control, load_control, ControlDataset, ControlManifest, ControlRegion};
pub use dataset::{load, merge, Dataset};
pub use generate::{generate, GenerateOptions};
pub use manifest::{JacobianKind, Manifest};
