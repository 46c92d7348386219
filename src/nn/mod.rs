//! Neural networks: the MLP φ (burn, with forward-mode input Jacobians for training), its f64
//! inference copy, the L2 / H1 / reduced-H1 / MS losses, the trainer, DIPNet (φ between reduced
//! bases, a differentiable map) and its model files.

pub mod anchor;
pub mod batch;
pub mod control;
pub mod dense;
pub mod dipnet;
pub mod evaluate;
pub mod loss;
pub mod mlp;
pub mod model_file;
pub mod resume;
pub mod samples;
pub mod settings;
pub mod train;

pub use anchor::{Anchor, AnchoredMap};
pub use control::{control_samples, ControlSurrogate};
pub use dense::DenseMlp;
pub use dipnet::{DipNet, InputBasis, JacobianData, ReducedCoordinates};
pub use loss::{JacobianTerm, Loss};
pub use mlp::{Mlp, MlpShape};
pub use model_file::{Metrics, ModelRecord, Surrogate};
