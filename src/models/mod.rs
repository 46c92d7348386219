//! PDE forward models. Each implements [`DifferentiableMap`] (what the outer loops use) and
//! [`PdeModel`] (what the CLI needs besides: the mesh and the state field).

pub mod poisson;

use crate::error::Result;
use crate::fem::Mesh;
use crate::map::{DifferentiableMap, Linearization};

pub use poisson::{PoissonModel, PoissonSettings, SourceFn};

/// Seconds spent in the stages of one forward solve.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ForwardTimings {
    /// Assembly of the state operator and right-hand side.
    pub assembly_s: f64,
    /// Numeric factorization.
    pub factorization_s: f64,
    /// Triangular solves and the observation.
    pub solve_s: f64,
}

/// A PDE model: a differentiable map that also exposes its mesh and state.
pub trait PdeModel: DifferentiableMap {
    /// Model name as in problem files.
    fn name(&self) -> &'static str;
    /// The mesh the state and parameter live on.
    fn mesh(&self) -> &Mesh;
    /// Solves the PDE at m and keeps what derivatives need.
    fn solve_pde(&self, m: &[f64]) -> Result<Box<dyn PdeLinearization + '_>>;
}

/// A PDE linearization: the map's linearization plus the state u(m).
pub trait PdeLinearization: Linearization {
    /// The nodal state u(m).
    fn state(&self) -> &[f64];
    /// Cost of the forward solve.
    fn timings(&self) -> ForwardTimings;
}
