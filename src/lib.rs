#![allow(clippy::needless_range_loop)] // 3×3 element matrices read best with explicit indices
//! dino: derivative-informed neural operators for PDE-constrained outer-loop problems.
//!
//! The modules follow the pipeline: finite elements ([`fem`]) → PDE models ([`models`]) → prior
//! ([`prior`]) → the differentiable-map abstraction shared with surrogates ([`map`]) → data misfit
//! ([`misfit`]); [`problem`] reads problem files, [`io`] writes what numpy and ParaView read,
//! [`workflow`] runs whole tasks (inference, comparison, training, OUU) from typed configs to
//! typed outcomes, and [`cli`] is the `dino` command.

pub mod bases;
pub mod cli;
pub mod data;
pub mod error;
pub mod fem;
pub mod inference;
pub mod io;
pub mod linalg;
pub mod map;
pub mod measure;
pub mod misfit;
pub mod models;
pub mod newton;
pub mod nn;
pub mod ouu;
pub mod prior;
pub mod problem;
pub mod report;
pub mod rng;
pub mod store;
pub mod taylor;
pub mod umbridge;
pub mod workflow;

pub use error::{Error, Result};
pub use map::{DifferentiableMap, Linearization};
pub use misfit::{GaussianMisfit, Misfit, NoiseCovariance};
