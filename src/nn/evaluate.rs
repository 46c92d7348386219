//! Test metrics of a surrogate against PDE data, as the paper's code computes them:
//!   l2_accuracy  = 1 − sqrt(E[‖q − f‖² / ‖q‖²]),
//!   h1_accuracy  = 1 − sqrt(E[‖J − ∇f‖²_F / ‖J‖²_F])   (full d_Q × d_M Jacobians),
//!   reduced_h1_accuracy: the same for Uᵀ J V vs Uᵀ ∇f V in the model's bases (for the
//!                        generic network, whose bases are identities, the same as h1_accuracy),
//! and the eq. 3.6 variants 1 − E[relative error] (`*_mean_relative`).

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::anchor::Anchor;
use super::dipnet::DipNet;
use super::model_file::Metrics;
use crate::error::Result;
use crate::map::DifferentiableMap;

/// Per-sample squared relative errors.
struct SampleErrors {
    l2: f64,
    h1: Option<f64>,
    reduced_h1: Option<f64>,
}

fn relative_squared(err: f64, norm: f64) -> f64 {
    if norm > 0.0 {
        err / norm
    } else {
        err
    }
}

/// Where the full test Jacobians come from.
pub enum TestJacobians<'a> {
    /// None: L2 metrics only.
    None,
    /// Stored with the data, N × d_Q × d_M.
    Stored(&'a ndarray::Array3<f32>),
    /// Recomputed with the PDE at each test parameter.
    Recompute(&'a dyn DifferentiableMap),
}

/// Metrics of `net` (plus `anchor`'s affine part q₀ + J₀(m − m₀) when anchored) on the test
/// samples (m: N × d_M, q: N × d_Q), parallel over samples.
pub fn test_metrics(
    net: &DipNet,
    anchor: Option<&Anchor>,
    m: &Array2<f64>,
    q: &Array2<f64>,
    jacobians: TestJacobians<'_>,
) -> Result<Metrics> {
    let errors: Vec<SampleErrors> = (0..m.nrows())
        .into_par_iter()
        .map(|i| -> Result<SampleErrors> {
            let mi = m.row(i);
            let (mut f, jr) = net.evaluate_reduced(&net.encode(mi.as_slice().expect("row-major")));
            if let Some(a) = anchor {
                f += &a.at(mi);
            }
            let qi = q.row(i);
            let l2 = relative_squared((&qi - &f).mapv(|v| v * v).sum(), qi.mapv(|v| v * v).sum());
            let full: Option<Array2<f64>> = match &jacobians {
                TestJacobians::None => None,
                TestJacobians::Stored(js) => {
                    Some(js.index_axis(ndarray::Axis(0), i).mapv(f64::from))
                }
                TestJacobians::Recompute(model) => Some(
                    model
                        .linearize(mi.as_slice().expect("row-major"))?
                        .jacobian(),
                ),
            };
            let (h1, reduced_h1) = match full {
                None => (None, None),
                Some(j) => {
                    let (h1, red) = jacobian_errors(j.view(), jr.view(), net, anchor);
                    (Some(h1), Some(red))
                }
            };
            Ok(SampleErrors { l2, h1, reduced_h1 })
        })
        .collect::<Result<_>>()?;
    let n = errors.len().max(1) as f64;
    let mean = |f: &dyn Fn(&SampleErrors) -> Option<f64>, sqrt_each: bool| -> Option<f64> {
        let vals: Option<Vec<f64>> = errors.iter().map(f).collect();
        vals.map(|v| {
            v.iter()
                .map(|&e| if sqrt_each { e.sqrt() } else { e })
                .sum::<f64>()
                / n
        })
    };
    let acc = |e: Option<f64>| e.map(|e| 1.0 - e.sqrt());
    let acc_mean = |e: Option<f64>| e.map(|e| 1.0 - e);
    Ok(Metrics {
        samples: errors.len(),
        l2_accuracy: acc(mean(&|e| Some(e.l2), false)).unwrap_or(f64::NAN),
        h1_accuracy: acc(mean(&|e| e.h1, false)),
        reduced_h1_accuracy: acc(mean(&|e| e.reduced_h1, false)),
        l2_accuracy_mean_relative: acc_mean(mean(&|e| Some(e.l2), true)).unwrap_or(f64::NAN),
        h1_accuracy_mean_relative: acc_mean(mean(&|e| e.h1, true)),
        reduced_h1_accuracy_mean_relative: acc_mean(mean(&|e| e.reduced_h1, true)),
    })
}

/// Squared relative errors of the full Jacobian ∇f = J_r Eᵀ (+ J₀ when anchored) and of the
/// reduced one Uᵀ ∇f V = Uᵀ J_r (+ Uᵀ J₀ V; Eᵀ V = I) against J.
fn jacobian_errors(
    j: ArrayView2<f64>,
    jr: ArrayView2<f64>,
    net: &DipNet,
    anchor: Option<&Anchor>,
) -> (f64, f64) {
    let rc = &net.coordinates;
    // the network's part of J: J − J₀ when anchored
    let own = match anchor {
        Some(a) => &j - &a.jacobian,
        None => j.to_owned(),
    };
    let predicted = rc.input_basis.expand_columns(jr);
    let full = relative_squared(
        (&own - &predicted).mapv(|v| v * v).sum(),
        j.mapv(|v| v * v).sum(),
    );
    let restrict = |x: &Array2<f64>| {
        rc.input_basis
            .restrict_columns(rc.output_basis.t().dot(x).view())
    };
    let reduced_pred = rc.output_basis.t().dot(&jr);
    let reduced = relative_squared(
        (&restrict(&own) - &reduced_pred).mapv(|v| v * v).sum(),
        restrict(&j.to_owned()).mapv(|v| v * v).sum(),
    );
    (full, reduced)
}
