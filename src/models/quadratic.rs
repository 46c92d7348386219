//! A small algebraic map for testing the outer loops: q_i = s_i + a s_i² with s = B m.
//!
//! With a = 0 it is linear, so a Gaussian prior gives a Gaussian posterior in closed form; with
//! a ≠ 0 its Gauss–Newton geometry changes with m, which position-dependent samplers must handle.
//! Its derivatives are exact: J = diag(1 + 2 a s) B, Jᵀ w = Bᵀ diag(1 + 2 a s) w.

use ndarray::{Array1, Array2};

use crate::error::Result;
use crate::map::{DifferentiableMap, Linearization};

/// q = s + a s² (elementwise), s = B m, for B (d_Q × d_M).
#[derive(Debug, Clone)]
pub struct ElementwiseQuadratic {
    pub b: Array2<f64>,
    pub a: f64,
}

/// The map at one point: q and the slopes dq_i/ds_i = 1 + 2 a s_i.
pub struct ElementwiseQuadraticLinearization<'a> {
    b: &'a Array2<f64>,
    slope: Vec<f64>,
    q: Vec<f64>,
}

impl DifferentiableMap for ElementwiseQuadratic {
    fn input_dim(&self) -> usize {
        self.b.ncols()
    }
    fn output_dim(&self) -> usize {
        self.b.nrows()
    }
    fn linearize(&self, m: &[f64]) -> Result<Box<dyn Linearization + '_>> {
        let s = self.b.dot(&Array1::from(m.to_vec()));
        Ok(Box::new(ElementwiseQuadraticLinearization {
            b: &self.b,
            slope: s.iter().map(|s| 1.0 + 2.0 * self.a * s).collect(),
            q: s.iter().map(|s| s + self.a * s * s).collect(),
        }))
    }
}

impl Linearization for ElementwiseQuadraticLinearization<'_> {
    fn output(&self) -> &[f64] {
        &self.q
    }
    fn jvp(&self, v: &[f64]) -> Vec<f64> {
        let bv = self.b.dot(&Array1::from(v.to_vec()));
        bv.iter().zip(&self.slope).map(|(a, b)| a * b).collect()
    }
    fn vjp(&self, w: &[f64]) -> Vec<f64> {
        let sw: Vec<f64> = w.iter().zip(&self.slope).map(|(a, b)| a * b).collect();
        self.b.t().dot(&Array1::from(sw)).to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taylor::TaylorTest;

    #[test]
    fn jacobian_passes_the_taylor_test_and_the_adjoint_identity() {
        let b = Array2::from_shape_fn((3, 5), |(i, j)| ((i * 5 + j) as f64 * 0.7).sin());
        let map = ElementwiseQuadratic { b, a: 0.4 };
        let m: Vec<f64> = (0..5).map(|j| (j as f64 * 1.3).cos()).collect();
        let v: Vec<f64> = (0..5).map(|j| (j as f64 * 0.9).sin()).collect();
        let w = [0.3, -1.2, 0.8];
        let lin = map.linearize(&m).unwrap();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let wq = |e: f64| {
            let x: Vec<f64> = m.iter().zip(&v).map(|(a, b)| a + e * b).collect();
            dot(&w, &map.evaluate(&x).unwrap())
        };
        TaylorTest::run_scalar(wq, wq(0.0), dot(&w, &lin.jvp(&v)), 1e-1, 6)
            .assert_second_order("J v of the elementwise quadratic", 0.1);
        assert!((dot(&w, &lin.jvp(&v)) - dot(&lin.vjp(&w), &v)).abs() < 1e-12);
    }
}
