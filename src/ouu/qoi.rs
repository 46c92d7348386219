//! The quantity of interest of a control problem, Q(z, m) = ∫ (u(z, m) − ū)² dx = (u − ū)ᵀ M (u − ū)
//! with the P1 mass matrix M, and its control gradient ∇_z Q = (∂u/∂z)ᵀ 2 M (u − ū)
//! (one forward and one adjoint solve per sample with the PDE).

use std::sync::Mutex;

use rayon::prelude::*;

use crate::error::Result;
use crate::map::{ControlledMap, Linearization};
use crate::models::ControlledDiffusion;

/// Q(z, m) and ∇_z Q: what optimization under uncertainty asks of a model, PDE or surrogate.
pub trait ControlQoi: Send + Sync {
    /// n_z
    fn control_dim(&self) -> usize;
    /// d_M
    fn parameter_dim(&self) -> usize;
    /// Q(·, m_i) at fixed parameter samples, with whatever does not depend on z computed once
    /// (a surrogate's encodings of the m_i; the PDE's warm starts).
    fn bind<'a>(&'a self, samples: &[Vec<f64>]) -> Result<Box<dyn SampledQoi + 'a>>;
}

/// Q(·, m_i) for a fixed set of parameter samples.
pub trait SampledQoi: Send + Sync {
    /// Number of samples N.
    fn len(&self) -> usize;
    /// True when there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Q(z, m_i) and ∇_z Q(z, m_i) for every sample; a failed sample is an error in its slot.
    fn values_and_gradients(&self, z: &[f64]) -> Vec<Result<(f64, Vec<f64>)>>;
    /// Q(z, m_i) alone for every sample.
    fn values(&self, z: &[f64]) -> Vec<Result<f64>> {
        self.values_and_gradients(z)
            .into_iter()
            .map(|r| r.map(|(q, _)| q))
            .collect()
    }
}

/// Q = (u − ū)ᵀ M (u − ū) and its control gradient from any controlled map's linearization.
pub fn state_misfit(
    lin: &dyn Linearization,
    target: &[f64],
    mass_mul: impl Fn(&[f64]) -> Vec<f64>,
) -> (f64, Vec<f64>) {
    let (q, m_diff) = misfit_and_dual(lin.output(), target, mass_mul);
    let w: Vec<f64> = m_diff.iter().map(|x| 2.0 * x).collect();
    (q, lin.vjp(&w))
}

/// Q = (u − ū)ᵀ M (u − ū) and M (u − ū).
fn misfit_and_dual(
    u: &[f64],
    target: &[f64],
    mass_mul: impl Fn(&[f64]) -> Vec<f64>,
) -> (f64, Vec<f64>) {
    let diff: Vec<f64> = u.iter().zip(target).map(|(u, t)| u - t).collect();
    let m_diff = mass_mul(&diff);
    let q = diff.iter().zip(&m_diff).map(|(a, b)| a * b).sum();
    (q, m_diff)
}

/// The PDE's Q at fixed samples, in parallel; each sample's Newton solve warm-starts from its
/// previous state.
struct PdeSampledQoi<'a> {
    model: &'a ControlledDiffusion,
    samples: Vec<Vec<f64>>,
    last_states: Vec<Mutex<Option<Vec<f64>>>>,
}

impl PdeSampledQoi<'_> {
    fn solve(&self, i: usize, z: &[f64]) -> Result<crate::models::ControlledState<'_>> {
        let initial = self.last_states[i].lock().expect("not poisoned").clone();
        let state = self.model.solve(z, &self.samples[i], initial.as_deref())?;
        *self.last_states[i].lock().expect("not poisoned") = Some(state.free_state());
        Ok(state)
    }
}

impl SampledQoi for PdeSampledQoi<'_> {
    fn len(&self) -> usize {
        self.samples.len()
    }

    fn values_and_gradients(&self, z: &[f64]) -> Vec<Result<(f64, Vec<f64>)>> {
        (0..self.samples.len())
            .into_par_iter()
            .map(|i| {
                let state = self.solve(i, z)?;
                Ok(state_misfit(&state, self.model.target(), |x| {
                    self.model.mass_mul(x)
                }))
            })
            .collect()
    }

    /// Q alone: forward solves only (no adjoint).
    fn values(&self, z: &[f64]) -> Vec<Result<f64>> {
        (0..self.samples.len())
            .into_par_iter()
            .map(|i| {
                let state = self.solve(i, z)?;
                let mass_mul = |x: &[f64]| self.model.mass_mul(x);
                Ok(misfit_and_dual(state.output(), self.model.target(), mass_mul).0)
            })
            .collect()
    }
}

impl ControlQoi for ControlledDiffusion {
    fn control_dim(&self) -> usize {
        ControlledMap::control_dim(self)
    }
    fn parameter_dim(&self) -> usize {
        ControlledMap::parameter_dim(self)
    }
    fn bind<'a>(&'a self, samples: &[Vec<f64>]) -> Result<Box<dyn SampledQoi + 'a>> {
        for m in samples {
            crate::error::check_finite_vector(
                m,
                ControlledMap::parameter_dim(self),
                "parameter sample",
                "m",
            )?;
        }
        Ok(Box::new(PdeSampledQoi {
            model: self,
            samples: samples.to_vec(),
            last_states: samples.iter().map(|_| Mutex::new(None)).collect(),
        }))
    }
}
