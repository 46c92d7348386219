//! A surrogate anchored at a linearization of the exact map:
//!   f(m) = q₀ + J₀ (m − m₀) + g(m),   q₀ = q(m₀), J₀ = ∂q/∂m(m₀) (d_Q × d_M, all of m),
//! with the network g trained on the residual r(m) = q(m) − q₀ − J₀ (m − m₀) (and, for the H1
//! loss, on J(m) − J₀). Near m₀ (e.g. the MAP point) the linear part is exact in every direction,
//! including those outside the network's input basis, and the network spends its accuracy on
//! the nonlinear remainder only.

use ndarray::{Array1, Array2, Array3, ArrayView1, Axis};

use crate::error::Result;
use crate::map::{DifferentiableMap, Linearization};

/// The affine part q₀ + J₀ (m − m₀) of an anchored surrogate.
#[derive(Debug, Clone, PartialEq)]
pub struct Anchor {
    /// m₀ (d_M)
    pub point: Array1<f64>,
    /// q₀ = q(m₀) (d_Q)
    pub value: Array1<f64>,
    /// J₀ (d_Q × d_M)
    pub jacobian: Array2<f64>,
}

impl Anchor {
    /// The linearization of `exact` at `point`: one solve and a full Jacobian.
    pub fn of(exact: &dyn DifferentiableMap, point: &[f64]) -> Result<Self> {
        let lin = exact.linearize(point)?;
        Ok(Anchor {
            point: Array1::from(point.to_vec()),
            value: Array1::from(lin.output().to_vec()),
            jacobian: lin.jacobian(),
        })
    }

    /// q₀ + J₀ (m − m₀).
    pub fn at(&self, m: ArrayView1<f64>) -> Array1<f64> {
        &self.value + &self.jacobian.dot(&(&m - &self.point))
    }

    /// The residual targets r_i = q_i − q₀ − J₀ (m_i − m₀) of samples (rows of m and q).
    pub fn residual_outputs(&self, m: &Array2<f64>, q: &Array2<f64>) -> Array2<f64> {
        q - &(m - &self.point).dot(&self.jacobian.t()) - &self.value
    }

    /// The residual Jacobian targets J_i P − J₀ P of Jacobians stored as J_i P (N × d_Q × r),
    /// P the first r columns of `projection` (None: full Jacobians, P = I).
    pub fn residual_jacobians(
        &self,
        jacobians: &Array3<f32>,
        projection: Option<&Array2<f64>>,
    ) -> Array3<f32> {
        let cols = jacobians.shape()[2];
        let j0p = match projection {
            Some(p) => self.jacobian.dot(&p.slice(ndarray::s![.., ..cols])),
            None => self.jacobian.clone(),
        };
        let mut out = jacobians.clone();
        for mut j in out.axis_iter_mut(Axis(0)) {
            j.zip_mut_with(&j0p, |a, &b| *a = (f64::from(*a) - b) as f32);
        }
        out
    }
}

/// The anchored map m ↦ q₀ + J₀ (m − m₀) + g(m) of a network map g.
pub struct AnchoredMap<'a> {
    pub network: &'a dyn DifferentiableMap,
    pub anchor: &'a Anchor,
}

struct AnchoredLinearization<'a> {
    inner: Box<dyn Linearization + 'a>,
    anchor: &'a Anchor,
    output: Vec<f64>,
}

impl DifferentiableMap for AnchoredMap<'_> {
    fn input_dim(&self) -> usize {
        self.network.input_dim()
    }
    fn output_dim(&self) -> usize {
        self.network.output_dim()
    }
    fn evaluate(&self, m: &[f64]) -> Result<Vec<f64>> {
        let g = self.network.evaluate(m)?;
        Ok((self.anchor.at(ArrayView1::from(m)) + Array1::from(g)).to_vec())
    }
    fn linearize(&self, m: &[f64]) -> Result<Box<dyn Linearization + '_>> {
        let inner = self.network.linearize(m)?;
        let output =
            (self.anchor.at(ArrayView1::from(m)) + ArrayView1::from(inner.output())).to_vec();
        Ok(Box::new(AnchoredLinearization {
            inner,
            anchor: self.anchor,
            output,
        }))
    }
    /// g: the map less its affine part.
    fn affine_free_part(&self) -> Option<&dyn DifferentiableMap> {
        Some(self.network)
    }
}

impl Linearization for AnchoredLinearization<'_> {
    fn output(&self) -> &[f64] {
        &self.output
    }
    fn jvp(&self, v: &[f64]) -> Vec<f64> {
        let jv = self.anchor.jacobian.dot(&ArrayView1::from(v));
        (jv + ArrayView1::from(&self.inner.jvp(v)[..])).to_vec()
    }
    fn vjp(&self, w: &[f64]) -> Vec<f64> {
        let jtw = crate::linalg::transpose_mul(&self.anchor.jacobian, ArrayView1::from(w));
        (jtw + ArrayView1::from(&self.inner.vjp(w)[..])).to_vec()
    }
    fn jacobian(&self) -> Array2<f64> {
        self.inner.jacobian() + &self.anchor.jacobian
    }
}
