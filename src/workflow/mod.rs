//! Typed workflows: a plain, serializable config in, a typed, serializable outcome out; no
//! report writing. The `dino` commands ([`crate::cli`]) turn arguments into configs, call one
//! workflow and write its outcome.
//!
//! - [`infer`]: MAP, Laplace and MCMC with the PDE or a surrogate as the forward map;
//! - [`compare`]: the same posterior sampled with the PDE and with a DINO, side by side;
//! - [`train`]: a DIPNet / generic network / MR-DINO into a model folder;
//! - [`eval`]: test accuracies of a trained surrogate;
//! - [`ouu`]: risk-averse optimal control under uncertainty (SAA of a risk measure of the QoI);
//! - [`study`]: the paper's accuracy study (losses × training-set sizes × networks).

pub mod compare;
pub mod coordinates;
pub mod eval;
pub mod infer;
pub mod inputs;
pub mod ouu;
pub mod study;
pub mod train;
mod train_control;
