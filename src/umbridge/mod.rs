//! UM-Bridge (protocol 1.0): dino's maps served to any UQ tool over JSON/HTTP
//! ([`server`]), any UM-Bridge model as a dino map ([`client`]), with the protocol's request and
//! response bodies in [`protocol`].
//!
//! A served model is any [`ServedModel`]: [`MapModel`] serves a [`DifferentiableMap`] (the PDE
//! or a surrogate) as F: ℝ^{d_M} → ℝ^{d_Q} with Gradient (Jᵀ s), ApplyJacobian (J v) and, where
//! the map has second derivatives, ApplyHessian (∂²(s·F)/∂m² v); [`LogPosteriorModel`] serves
//! log π(m | d) as a 1-vector with its gradient, the convention of the UM-Bridge benchmarks.

pub mod client;
pub mod protocol;
pub mod server;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, Result};
use crate::inference::Posterior;
use crate::map::{DifferentiableMap, Linearization};

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
///
/// UM-Bridge is stateless: a client that wants the Jacobian at x sends d_Q Gradient (or d_M
/// ApplyJacobian) requests with the same x, often at once. The model keeps the linearizations
/// at the last [`LINEARIZATION_CACHE`] inputs (keyed by their bits), so that one solve and one
/// factorization serve all of them; concurrent requests at a new x wait for the one solve.
pub struct MapModel<'a> {
    map: &'a dyn DifferentiableMap,
    hessian: bool,
    cache: Mutex<VecDeque<(Vec<u64>, Arc<CachedLinearization<'a>>)>>,
}

/// Linearizations kept by a served map.
pub const LINEARIZATION_CACHE: usize = 16;

type CachedLinearization<'a> = OnceLock<std::result::Result<Box<dyn Linearization + 'a>, String>>;

impl<'a> MapModel<'a> {
    /// Serves `map`; ApplyHessian is offered when its linearization at `probe` has second
    /// derivatives.
    pub fn new(map: &'a dyn DifferentiableMap, probe: &[f64]) -> Result<Self> {
        let lin = map.linearize(probe)?;
        let zeros_out = vec![0.0; map.output_dim()];
        let hessian = lin.second_order_action(&zeros_out, probe).is_some();
        Ok(MapModel {
            map,
            hessian,
            cache: Mutex::new(VecDeque::new()),
        })
    }

    /// `f` of the linearization at x: the cached one, or a new one (solved once, whoever asks).
    fn with_linearization<T>(
        &self,
        x: &[f64],
        f: impl FnOnce(&dyn Linearization) -> T,
    ) -> Result<T> {
        let key: Vec<u64> = x.iter().map(|v| v.to_bits()).collect();
        let entry = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            match cache.iter().position(|(k, _)| *k == key) {
                Some(i) => cache[i].1.clone(),
                None => {
                    let entry = Arc::new(OnceLock::new());
                    if cache.len() == LINEARIZATION_CACHE {
                        cache.pop_front();
                    }
                    cache.push_back((key, entry.clone()));
                    entry
                }
            }
        };
        match entry.get_or_init(|| self.map.linearize(x).map_err(|e| e.to_string())) {
            Ok(lin) => Ok(f(lin.as_ref())),
            Err(message) => Err(Error::numerical("solve", message.clone())),
        }
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
        self.with_linearization(x, |lin| lin.output().to_vec())
    }
    fn gradient(&self, x: &[f64], sens: &[f64]) -> Result<Vec<f64>> {
        self.with_linearization(x, |lin| lin.vjp(sens))
    }
    fn apply_jacobian(&self, x: &[f64], vec: &[f64]) -> Result<Vec<f64>> {
        self.with_linearization(x, |lin| lin.jvp(vec))
    }
    fn apply_hessian(&self, x: &[f64], sens: &[f64], vec: &[f64]) -> Result<Option<Vec<f64>>> {
        self.with_linearization(x, |lin| lin.second_order_action(sens, vec))
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
