//! An external model (an UM-Bridge server) as a [`PdeModel`]: the parameter is a nodal field on
//! the problem's mesh (where the prior lives), q is whatever the model outputs. dino sees no
//! state, so `state()` is empty and the cost statistics are zero.

use crate::error::Result;
use crate::fem::Mesh;
use crate::map::{DifferentiableMap, JacobianNeed, Linearization};
use crate::umbridge::client::UmBridgeModel;

use super::{ForwardStats, PdeLinearization, PdeModel};

/// An UM-Bridge model over the nodal fields of `mesh`.
pub struct ExternalModel {
    mesh: Mesh,
    remote: UmBridgeModel,
    stats: ForwardStats,
}

impl ExternalModel {
    pub fn new(mesh: Mesh, remote: UmBridgeModel) -> Self {
        ExternalModel {
            mesh,
            remote,
            stats: ForwardStats::default(),
        }
    }

    /// The client.
    pub fn remote(&self) -> &UmBridgeModel {
        &self.remote
    }
}

impl DifferentiableMap for ExternalModel {
    fn input_dim(&self) -> usize {
        self.remote.input_dim()
    }
    fn output_dim(&self) -> usize {
        self.remote.output_dim()
    }
    fn linearize(&self, m: &[f64]) -> Result<Box<dyn Linearization + '_>> {
        self.remote.linearize(m)
    }
    fn evaluate(&self, m: &[f64]) -> Result<Vec<f64>> {
        self.remote.evaluate(m)
    }
    fn output_and_jacobian(
        &self,
        m: &[f64],
        need: JacobianNeed<'_>,
    ) -> Result<(Vec<f64>, Option<ndarray::Array2<f64>>)> {
        self.remote.output_and_jacobian(m, need)
    }
}

struct ExternalLinearization<'a> {
    inner: Box<dyn Linearization + 'a>,
    stats: &'a ForwardStats,
}

impl Linearization for ExternalLinearization<'_> {
    fn output(&self) -> &[f64] {
        self.inner.output()
    }
    fn jvp(&self, v: &[f64]) -> Vec<f64> {
        self.inner.jvp(v)
    }
    fn vjp(&self, w: &[f64]) -> Vec<f64> {
        self.inner.vjp(w)
    }
    fn jacobian(&self) -> ndarray::Array2<f64> {
        self.inner.jacobian()
    }
}

impl PdeLinearization for ExternalLinearization<'_> {
    fn state(&self) -> &[f64] {
        &[]
    }
    fn stats(&self) -> &ForwardStats {
        self.stats
    }
}

impl PdeModel for ExternalModel {
    fn name(&self) -> &'static str {
        "umbridge"
    }
    fn mesh(&self) -> &Mesh {
        &self.mesh
    }
    fn solve_pde(&self, m: &[f64]) -> Result<Box<dyn PdeLinearization + '_>> {
        Ok(Box::new(ExternalLinearization {
            inner: self.remote.linearize(m)?,
            stats: &self.stats,
        }))
    }
}
