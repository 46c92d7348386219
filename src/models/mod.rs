//! PDE forward models (and an algebraic test map, [`ElementwiseQuadratic`]). Each implements [`DifferentiableMap`] (what the outer loops use) and
//! [`PdeModel`] (what the CLI needs besides: the mesh, the state and the cost of a solve).

/// The [`DifferentiableMap`] and [`PdeModel`] impls of an implicit PDE model: a type with fields
/// `mesh` (parameter m ∈ ℝ^{#vertices}) and `observation` (q = B u ∈ ℝ^{#observations}) and a
/// method `solve(m)` returning its [`ImplicitLinearization`]-backed linearization; `name` and
/// `auxiliary` are expressions in `$this` (the model).
macro_rules! implicit_pde_model {
    ($model:ty, |$this:ident| name: $name:expr, auxiliary: $aux:expr) => {
        impl $crate::map::DifferentiableMap for $model {
            fn input_dim(&self) -> usize {
                self.mesh.num_vertices()
            }
            fn output_dim(&self) -> usize {
                self.observation.len()
            }
            fn linearize(
                &self,
                m: &[f64],
            ) -> $crate::error::Result<Box<dyn $crate::map::Linearization + '_>> {
                Ok(Box::new(self.solve(m)?))
            }
        }

        impl $crate::models::PdeModel for $model {
            fn name(&self) -> &'static str {
                let $this = self;
                $name
            }
            fn mesh(&self) -> &$crate::fem::Mesh {
                &self.mesh
            }
            fn solve_pde(
                &self,
                m: &[f64],
            ) -> $crate::error::Result<Box<dyn $crate::models::PdeLinearization + '_>> {
                Ok(Box::new(self.solve(m)?))
            }
            fn auxiliary_fields(&self) -> Vec<(&'static str, usize, &[f64])> {
                let $this = self;
                $aux
            }
        }
    };
}

pub mod controlled;
pub mod convection;
pub mod diffusion;
pub mod external;
pub mod implicit;
pub mod navier_stokes;
pub mod quadratic;

use crate::error::Result;
use crate::fem::Mesh;
use crate::map::{DifferentiableMap, Linearization};

pub use controlled::{ControlledDiffusion, ControlledState};
pub use convection::{ConvectionModel, ConvectionSettings};
pub use diffusion::{mollified_sources, DiffusionModel, DiffusionSettings, SourceFn};
pub use external::ExternalModel;
pub use implicit::ImplicitLinearization;
pub use quadratic::ElementwiseQuadratic;

/// The cost of one forward solve.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ForwardStats {
    /// Seconds assembling residuals and right-hand sides.
    pub assembly_s: f64,
    /// Seconds assembling and factoring the state operator (every Newton iteration).
    pub factorization_s: f64,
    /// Seconds in triangular solves and the observation.
    pub solve_s: f64,
    /// Newton iterations (0 for a linear model: one direct solve).
    pub newton_iterations: usize,
    /// ‖r‖ at each Newton iterate (empty for a linear model).
    pub residual_norms: Vec<f64>,
}

/// A PDE model: a differentiable map that also exposes its mesh and state.
pub trait PdeModel: DifferentiableMap {
    /// Model name as in problem files.
    fn name(&self) -> &'static str;
    /// The mesh the state and parameter live on.
    fn mesh(&self) -> &Mesh;
    /// Solves the PDE at m and keeps what derivatives need.
    fn solve_pde(&self, m: &[f64]) -> Result<Box<dyn PdeLinearization + '_>>;
    /// Extra nodal fields worth writing with the state (name, components, values), e.g. a velocity.
    fn auxiliary_fields(&self) -> Vec<(&'static str, usize, &[f64])> {
        Vec::new()
    }
}

/// A PDE linearization: the map's linearization plus the state u(m).
pub trait PdeLinearization: Linearization {
    /// The nodal state u(m).
    fn state(&self) -> &[f64];
    /// Cost of the forward solve.
    fn stats(&self) -> &ForwardStats;
}
