//! UM-Bridge (protocol 1.0): dino's maps served to any UQ tool over JSON/HTTP
//! ([`server`]), with the protocol's request and response bodies in [`protocol`].
//!
//! A served model is any [`ServedModel`]: [`MapModel`] serves a [`DifferentiableMap`] (the PDE
//! or a surrogate) as F: ℝ^{d_M} → ℝ^{d_Q} with Gradient (Jᵀ s), ApplyJacobian (J v) and, where
//! the map has second derivatives, ApplyHessian (∂²(s·F)/∂m² v); [`LogPosteriorModel`] serves
//! log π(m | d) as a 1-vector with its gradient, the convention of the UM-Bridge benchmarks.

pub mod client;
pub mod protocol;
pub mod server;

use crate::error::Result;
use crate::inference::Posterior;
use crate::map::DifferentiableMap;

/// What a served model can do (`/ModelInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Support {
    pub evaluate: bool,
    pub gradient: bool,
    pub apply_jacobian: bool,
    pub apply_hessian: bool,
}

/// A model with one input vector of `input_size` and one output vector of `output_size`.
pub trait ServedModel: Send + Sync {
    fn input_size(&self) -> usize;
    fn output_size(&self) -> usize;
    fn support(&self) -> Support;
    /// F(x).
    fn evaluate(&self, x: &[f64]) -> Result<Vec<f64>>;
    /// (∂F/∂x)ᵀ s.
    fn gradient(&self, x: &[f64], sens: &[f64]) -> Result<Vec<f64>>;
    /// (∂F/∂x) v.
    fn apply_jacobian(&self, x: &[f64], vec: &[f64]) -> Result<Vec<f64>>;
    /// ∂²(s · F)/∂x² v; `None` when the model has no second derivatives.
    fn apply_hessian(&self, x: &[f64], sens: &[f64], vec: &[f64]) -> Result<Option<Vec<f64>>>;
}

/// A differentiable map served as an UM-Bridge model.
pub struct MapModel<'a> {
    map: &'a dyn DifferentiableMap,
    hessian: bool,
}

impl<'a> MapModel<'a> {
    /// Serves `map`; ApplyHessian is offered when its linearization at `probe` has second
    /// derivatives.
    pub fn new(map: &'a dyn DifferentiableMap, probe: &[f64]) -> Result<Self> {
        let lin = map.linearize(probe)?;
        let zeros_out = vec![0.0; map.output_dim()];
        let hessian = lin.second_order_action(&zeros_out, probe).is_some();
        Ok(MapModel { map, hessian })
    }
}

impl ServedModel for MapModel<'_> {
    fn input_size(&self) -> usize {
        self.map.input_dim()
    }
    fn output_size(&self) -> usize {
        self.map.output_dim()
    }
    fn support(&self) -> Support {
        Support {
            evaluate: true,
            gradient: true,
            apply_jacobian: true,
            apply_hessian: self.hessian,
        }
    }
    fn evaluate(&self, x: &[f64]) -> Result<Vec<f64>> {
        self.map.evaluate(x)
    }
    fn gradient(&self, x: &[f64], sens: &[f64]) -> Result<Vec<f64>> {
        Ok(self.map.linearize(x)?.vjp(sens))
    }
    fn apply_jacobian(&self, x: &[f64], vec: &[f64]) -> Result<Vec<f64>> {
        Ok(self.map.linearize(x)?.jvp(vec))
    }
    fn apply_hessian(&self, x: &[f64], sens: &[f64], vec: &[f64]) -> Result<Option<Vec<f64>>> {
        Ok(self.map.linearize(x)?.second_order_action(sens, vec))
    }
}

/// log π(m | d) = −(½‖q(m) − d‖²_{Γ⁻¹} + ½‖m − m̄‖²_R) (up to a constant) as a 1-vector: its
/// gradient is −s₀ ∇Φ_post(m), its Hessian action −s₀ (H_GN + R) v (Gauss–Newton, or the
/// full Hessian where the map has second derivatives).
pub struct LogPosteriorModel<'p, 'a> {
    post: &'p Posterior<'a>,
}

impl<'p, 'a> LogPosteriorModel<'p, 'a> {
    pub fn new(post: &'p Posterior<'a>) -> Self {
        LogPosteriorModel { post }
    }
}

impl ServedModel for LogPosteriorModel<'_, '_> {
    fn input_size(&self) -> usize {
        self.post.map.input_dim()
    }
    fn output_size(&self) -> usize {
        1
    }
    fn support(&self) -> Support {
        Support {
            evaluate: true,
            gradient: true,
            apply_jacobian: true,
            apply_hessian: true,
        }
    }
    fn evaluate(&self, x: &[f64]) -> Result<Vec<f64>> {
        Ok(vec![-self.post.cost(x)?.total])
    }
    fn gradient(&self, x: &[f64], sens: &[f64]) -> Result<Vec<f64>> {
        let point = self.post.linearize(x)?;
        Ok(point.gradient.iter().map(|g| -sens[0] * g).collect())
    }
    fn apply_jacobian(&self, x: &[f64], vec: &[f64]) -> Result<Vec<f64>> {
        let point = self.post.linearize(x)?;
        let d: f64 = point.gradient.iter().zip(vec).map(|(g, v)| g * v).sum();
        Ok(vec![-d])
    }
    fn apply_hessian(&self, x: &[f64], sens: &[f64], vec: &[f64]) -> Result<Option<Vec<f64>>> {
        let point = self.post.linearize(x)?;
        let h = point
            .newton_hessian_action(self.post, vec)
            .unwrap_or_else(|| point.hessian_action(self.post, vec));
        Ok(Some(h.iter().map(|h| -sens[0] * h).collect()))
    }
}
