//! Training samples in network coordinates: inputs, outputs and Jacobian targets as row-major
//! f32 arrays, the metric the Jacobian term is measured in, the reproducible train/validation
//! split and each sample's truncated Jacobian SVD (for the reduced-H1 and MS losses).

use burn::tensor::{Device, Tensor, TensorData};
use rand::seq::SliceRandom;

use crate::error::{Error, Result};
use crate::rng::{stream, Purpose};

/// Training samples in row-major f32 arrays (network coordinates).
#[derive(Debug, Clone)]
pub struct Samples {
    pub count: usize,
    pub input: usize,
    pub output: usize,
    /// [count, input]
    pub x: Vec<f32>,
    /// [count, output]
    pub q: Vec<f32>,
    /// Jacobian targets [count, output, k], when derivative data are available: ∇q itself
    /// (k = input) without a metric, T_i with a metric (see [`JacobianMetric`]).
    pub jacobian: Option<Vec<f32>>,
    /// The metric the Jacobian term is measured in (None: plain Frobenius of ∇φ).
    pub metric: Option<JacobianMetric>,
}

/// A metric for the Jacobian term: the term compares T_i with S ∇φ Dᵀ, where the rows of D
/// (k × input) are input directions and S = diag(`output_scale`). DIPNet uses it so that its
/// relative Jacobian error is the error of the *full* d_Q × d_M Jacobian in the Frobenius norm
/// (see `ReducedCoordinates::samples_from`).
#[derive(Debug, Clone)]
pub struct JacobianMetric {
    pub directions: MetricDirections,
    /// S, \[output\].
    pub output_scale: Vec<f32>,
}

/// The input directions D of a [`JacobianMetric`].
#[derive(Debug, Clone, PartialEq)]
pub enum MetricDirections {
    /// D given by its rows, [k, input] row-major.
    Rows { d: Vec<f32>, k: usize },
    /// D = diag(s) (k = input), never formed: S ∇φ D is a column scaling of ∇φ.
    Diagonal(Vec<f32>),
}

impl MetricDirections {
    /// Number of directions k.
    pub fn count(&self) -> usize {
        match self {
            MetricDirections::Rows { k, .. } => *k,
            MetricDirections::Diagonal(s) => s.len(),
        }
    }

    /// Dᵀ v for a vector v of length k (an input-space direction).
    fn transpose_apply(&self, v: impl Fn(usize) -> f64, input: usize) -> Vec<f64> {
        match self {
            MetricDirections::Rows { d, k } => (0..input)
                .map(|b| (0..*k).map(|l| f64::from(d[l * input + b]) * v(l)).sum())
                .collect(),
            MetricDirections::Diagonal(s) => (0..input).map(|b| f64::from(s[b]) * v(b)).collect(),
        }
    }
}

impl Samples {
    /// Columns of a Jacobian target: k with a metric, `input` without.
    pub fn jacobian_columns(&self) -> usize {
        self.metric
            .as_ref()
            .map_or(self.input, |m| m.directions.count())
    }
}

/// Each sample's truncated SVD J_i ≈ U_i Σ_i V_iᵀ (for the reduced H1 and MS losses).
#[derive(Debug, Clone)]
pub struct SampleSvd {
    pub rank: usize,
    /// [count, output, rank] (S U_k with a metric)
    pub u: Vec<f32>,
    /// [count, rank]
    pub s: Vec<f32>,
    /// [count, input, rank] (input-space directions: Dᵀ V_k with a metric)
    pub v: Vec<f32>,
}

pub(crate) fn gather(a: &[f32], width: usize, rows: &[usize]) -> Vec<f32> {
    rows.iter()
        .flat_map(|&r| a[r * width..(r + 1) * width].iter().copied())
        .collect()
}

impl Samples {
    /// The samples at `rows`, in that order.
    pub fn subset(&self, rows: &[usize]) -> Samples {
        Samples {
            count: rows.len(),
            input: self.input,
            output: self.output,
            x: gather(&self.x, self.input, rows),
            q: gather(&self.q, self.output, rows),
            jacobian: self
                .jacobian
                .as_ref()
                .map(|j| gather(j, self.jacobian_columns() * self.output, rows)),
            metric: self.metric.clone(),
        }
    }

    /// A reproducible split into (training, validation) with `fraction` of the samples (at least
    /// one when fraction > 0) held out.
    pub fn split(&self, fraction: f64, seed: u64) -> (Samples, Option<Samples>) {
        let held = ((self.count as f64 * fraction).round() as usize).min(self.count - 1);
        let held = if fraction > 0.0 { held.max(1) } else { 0 };
        if held == 0 {
            return (self.clone(), None);
        }
        let mut order: Vec<usize> = (0..self.count).collect();
        order.shuffle(&mut stream(seed, Purpose::Split, 0));
        let (val, train) = order.split_at(held);
        (self.subset(train), Some(self.subset(val)))
    }

    /// Each sample's rank-`rank` SVD of its Jacobian. Asking for more than min(output, input)
    /// is an error (never a silent truncation).
    pub fn svd(&self, rank: usize) -> Result<SampleSvd> {
        let jac = self.jacobian.as_ref().ok_or_else(|| {
            Error::invalid(
                "training data",
                "jacobian",
                "Jacobian data (the reduced-H1 and MS losses need them)",
                "none",
            )
        })?;
        let (n_out, n_in) = (self.output, self.jacobian_columns());
        if rank == 0 || rank > n_out.min(n_in) {
            return Err(Error::invalid(
                "loss",
                "rank",
                format!(
                    "a Jacobian SVD rank between 1 and min(r_Q, r_M) = {}",
                    n_out.min(n_in)
                ),
                rank,
            ));
        }
        use rayon::prelude::*;
        let per_sample: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = (0..self.count)
            .into_par_iter()
            .map(|i| {
                let j = &jac[i * n_out * n_in..(i + 1) * n_out * n_in];
                let m = faer::Mat::from_fn(n_out, n_in, |a, b| f64::from(j[a * n_in + b]));
                let svd = m.thin_svd().expect("SVD of a finite matrix");
                let (u, s, v) = (svd.U(), svd.S().column_vector(), svd.V());
                // with a metric, S U_k and Dᵀ V_k: then U_kᵀ (S ∇φ Dᵀ) V_k = (S U_k)ᵀ ∇φ (Dᵀ V_k)
                let mut uu = Vec::with_capacity(n_out * rank);
                for a in 0..n_out {
                    let scale = self
                        .metric
                        .as_ref()
                        .map_or(1.0, |m| f64::from(m.output_scale[a]));
                    uu.extend((0..rank).map(|k| (scale * u[(a, k)]) as f32));
                }
                let columns: Vec<Vec<f64>> = (0..rank)
                    .map(|k| match &self.metric {
                        None => (0..self.input).map(|b| v[(b, k)]).collect(),
                        Some(m) => m.directions.transpose_apply(|l| v[(l, k)], self.input),
                    })
                    .collect();
                let mut vv = Vec::with_capacity(self.input * rank);
                for b in 0..self.input {
                    vv.extend(columns.iter().map(|col| col[b] as f32));
                }
                (uu, (0..rank).map(|k| s[k] as f32).collect(), vv)
            })
            .collect();
        let mut out = SampleSvd {
            rank,
            u: Vec::with_capacity(self.count * n_out * rank),
            s: Vec::with_capacity(self.count * rank),
            v: Vec::with_capacity(self.count * self.input * rank),
        };
        for (u, s, v) in per_sample {
            out.u.extend(u);
            out.s.extend(s);
            out.v.extend(v);
        }
        Ok(out)
    }

    pub(crate) fn tensors(&self, rows: &[usize], device: &Device) -> (Tensor<2>, Tensor<2>) {
        let b = rows.len();
        (
            Tensor::from_data(
                TensorData::new(gather(&self.x, self.input, rows), [b, self.input]),
                device,
            ),
            Tensor::from_data(
                TensorData::new(gather(&self.q, self.output, rows), [b, self.output]),
                device,
            ),
        )
    }
}
