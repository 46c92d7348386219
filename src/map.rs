//! The one abstraction the outer loops see: a differentiable map m ↦ q(m).
//!
//! Both the PDE models and the neural surrogates implement [`DifferentiableMap`]. Evaluating it
//! at a point m returns a [`Linearization`], which holds whatever makes derivatives cheap at
//! that point (the PDE's factorized state operator, or a network's activations) and answers
//! J v and Jᵀ w as often as needed.
//!
//! Inner products: m and v are nodal coefficient vectors (ℝ^{d_M}), q and w are ℝ^{d_Q}.
//! `vjp` is the ℓ²-transpose of `jvp`, wᵀ(J v) = (Jᵀ w)ᵀ v, i.e. Jᵀ w is a *dual* vector over
//! the nodes; its L²-Riesz representer is M⁻¹ Jᵀ w.

use ndarray::Array2;

use crate::error::Result;

/// A differentiable map from parameters m ∈ ℝ^{d_M} to observables q ∈ ℝ^{d_Q}.
pub trait DifferentiableMap: Send + Sync {
    /// d_M
    fn input_dim(&self) -> usize;
    /// d_Q
    fn output_dim(&self) -> usize;
    /// Evaluates q(m) and keeps what is needed for derivatives at m.
    fn linearize(&self, m: &[f64]) -> Result<Box<dyn Linearization + '_>>;
    /// q(m) alone.
    fn evaluate(&self, m: &[f64]) -> Result<Vec<f64>> {
        Ok(self.linearize(m)?.output().to_vec())
    }
    /// q(m) and its Jacobian as `need` asks: none, the full J (d_Q × d_M), or J V for a
    /// d_M × r basis V. The default linearizes once and uses [`projected_jacobian`]; a map whose
    /// derivatives cost one request each (an external model) overrides it to choose the
    /// cheapest set of requests.
    fn output_and_jacobian(
        &self,
        m: &[f64],
        need: JacobianNeed<'_>,
    ) -> Result<(Vec<f64>, Option<Array2<f64>>)> {
        if let JacobianNeed::None = need {
            return Ok((self.evaluate(m)?, None));
        }
        let lin = self.linearize(m)?;
        let jacobian = match need {
            JacobianNeed::None => None,
            JacobianNeed::Full => Some(lin.jacobian()),
            JacobianNeed::Projected(v) => Some(projected_jacobian(lin.as_ref(), v)),
        };
        Ok((lin.output().to_vec(), jacobian))
    }
    /// The map's own input encoder E (d_M × r), when q depends on m only through the reduced
    /// coefficients c = Eᵀ(m − m̄) (a reduced-basis surrogate); its linearizations then return
    /// J_r = ∂q/∂c from [`Linearization::reduced_jacobian`], and J = J_r Eᵀ.
    fn input_encoder(&self) -> Option<&Array2<f64>> {
        None
    }
    /// The reduced coefficients e = Eᵀ(m − m̄) of m, for a map with an input encoder E.
    fn encode(&self, _m: &[f64]) -> Option<Vec<f64>> {
        None
    }
    /// For a map with an input encoder: q at the reduced coefficients e (no encoding) and the
    /// pullback (∂q/∂e)ᵀ w of a cotangent w = `cotangent(q)` that may depend on q, by one
    /// forward and one backward pass (no Jacobian formed). `None` for maps without this path.
    fn reduced_pullback(
        &self,
        _e: &[f64],
        _cotangent: &mut dyn FnMut(&[f64]) -> Vec<f64>,
    ) -> Option<(Vec<f64>, Vec<f64>)> {
        None
    }
    /// For a map q(m) = a + A m + g(m) that carries a known affine part (an anchored
    /// surrogate): g. A user that corrects the map by an affine function of its own (the
    /// delayed-acceptance chains' correction towards the PDE) gets the same corrected map from
    /// g, and keeps g's fast paths.
    fn affine_free_part(&self) -> Option<&dyn DifferentiableMap> {
        None
    }
}

/// Which Jacobian [`DifferentiableMap::output_and_jacobian`] returns.
#[derive(Debug, Clone, Copy)]
pub enum JacobianNeed<'a> {
    /// q alone.
    None,
    /// J = ∂q/∂m, d_Q × d_M.
    Full,
    /// J V for a d_M × r basis V.
    Projected(&'a Array2<f64>),
}

/// J V for a d_M × r basis V: r products J v_j when r ≤ d_Q, else the full Jacobian times V.
pub fn projected_jacobian(lin: &dyn Linearization, v: &Array2<f64>) -> Array2<f64> {
    let (d_q, r) = (lin.output().len(), v.ncols());
    if r <= d_q {
        let mut out = Array2::zeros((d_q, r));
        for (j, col) in v.columns().into_iter().enumerate() {
            let jv = lin.jvp(&col.to_vec());
            out.column_mut(j).assign(&ndarray::ArrayView1::from(&jv));
        }
        out
    } else {
        lin.jacobian().dot(v)
    }
}

/// The map and its derivative at one point m.
pub trait Linearization: Send + Sync {
    /// q(m)
    fn output(&self) -> &[f64];
    /// J v, for v ∈ ℝ^{d_M}.
    fn jvp(&self, v: &[f64]) -> Vec<f64>;
    /// Jᵀ w, for w ∈ ℝ^{d_Q} (ℓ² transpose of `jvp`).
    fn vjp(&self, w: &[f64]) -> Vec<f64>;
    /// The full d_Q × d_M Jacobian. The default applies `vjp` to each unit vector of ℝ^{d_Q};
    /// implementations override it when all rows can be computed in one pass.
    fn jacobian(&self) -> Array2<f64> {
        let d_q = self.output().len();
        let mut w = vec![0.0; d_q];
        let rows: Vec<Vec<f64>> = (0..d_q)
            .map(|k| {
                w.fill(0.0);
                w[k] = 1.0;
                self.vjp(&w)
            })
            .collect();
        let d_m = rows.first().map_or(0, Vec::len);
        Array2::from_shape_fn((d_q, d_m), |(k, j)| rows[k][j])
    }
    /// J_r = ∂q/∂c (d_Q × r) for a map with an input encoder (see
    /// [`DifferentiableMap::input_encoder`]); `None` otherwise.
    fn reduced_jacobian(&self) -> Option<&Array2<f64>> {
        None
    }
    /// The second derivative of q contracted with a cotangent w ∈ ℝ^{d_Q} and applied to
    /// v ∈ ℝ^{d_M}: (Σ_k w_k ∇²q_k(m)) v = d/dε Jᵀ(m + εv) w at ε = 0 (symmetric in v). `None`
    /// for a map that provides first derivatives only. Full-Newton Hessians of a misfit
    /// ½‖q − d‖²_{Γ⁻¹} add this with w = Γ⁻¹(q − d) to the Gauss–Newton term JᵀΓ⁻¹J.
    fn second_order_action(&self, _w: &[f64], _v: &[f64]) -> Option<Vec<f64>> {
        None
    }
    /// The full Hessian action of the misfit ½‖q − d‖²_{Γ⁻¹} at this point:
    /// JᵀΓ⁻¹J v + (Σ_k w_k ∇²q_k) v with the weighted residual w = Γ⁻¹(q − d) and Γ⁻¹ applied by
    /// `noise_precision`; `None` without
    /// second derivatives. The default adds the two parts; PDE maps fuse them into one
    /// incremental state and one adjoint solve.
    fn misfit_hessian_action(
        &self,
        w: &[f64],
        noise_precision: &dyn Fn(&[f64]) -> Vec<f64>,
        v: &[f64],
    ) -> Option<Vec<f64>> {
        let mut h = self.second_order_action(w, v)?;
        let jv = noise_precision(&self.jvp(v));
        h.iter_mut().zip(self.vjp(&jv)).for_each(|(a, b)| *a += b);
        Some(h)
    }
}

/// A map (z, m) ↦ u(z, m) ∈ ℝ^{d_U} that is differentiable in a control z ∈ ℝ^{n_z}: what
/// optimization under uncertainty needs (the PDE state with control sources, or a multi-input
/// surrogate of it). The parameter m is the uncertain input, held fixed while z varies.
pub trait ControlledMap: Send + Sync {
    /// n_z
    fn control_dim(&self) -> usize;
    /// d_M
    fn parameter_dim(&self) -> usize;
    /// d_U
    fn output_dim(&self) -> usize;
    /// u(z, m) and its control derivative at (z, m): the returned linearization's `jvp` takes
    /// v ∈ ℝ^{n_z} to (∂u/∂z) v, its `vjp` takes w ∈ ℝ^{d_U} to (∂u/∂z)ᵀ w.
    fn linearize_control(&self, z: &[f64], m: &[f64]) -> Result<Box<dyn Linearization + '_>>;
}
