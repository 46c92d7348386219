//! Neural networks (burn): the MLP with forward-mode input Jacobians, the relative L2 / H1
//! losses, and a minimal deterministic Adam loop. The full trainer, DIPNet with reduced bases,
//! model files and `dino train` / `dino eval` build on these (issue #5).

pub mod dipnet;
pub mod loss;
pub mod mlp;
pub mod train;

pub use dipnet::{DipNet, ReducedCoordinates};
pub use loss::LossWeights;
pub use mlp::{Mlp, MlpShape};
