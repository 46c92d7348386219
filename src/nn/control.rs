//! MR-DINO (Luo et al. 2023): a multi-input reduced-basis surrogate of the controlled state
//!   u(z, m) ≈ ū + Φ ψ([Eᵀ(m − m̄); z − z̄]),
//! a DIPNet on the augmented input x = (m, z) with the block-diagonal encoder Ẽ = diag(E, I)
//! (E: a KLE or active-subspace encoder of m, the low-dimensional z passed through whole) and a
//! POD decoder Φ of the states. It is trained on the *control* Jacobian Φᵀ ∂u/∂z, the derivative
//! OUU needs.
//!
//! For OUU the QoI Q = (u − ū_t)ᵀ M (u − ū_t) is evaluated in the reduced space: with ψ the reduced
//! output and d = ū − ū_t,
//!   Q = ψᵀ (ΦᵀMΦ) ψ + 2 ψᵀ ΦᵀM d + dᵀM d,   ∂Q/∂ψ = 2 (ΦᵀMΦ ψ + ΦᵀM d),
//! and ∇_z Q is one backward pass through φ: O(r_U² + network) per sample, independent of the mesh.
//!
//! The reduced outputs share one normalization scale (their RMS), so that the relative L2 loss
//! weighs the POD modes by their energy.

use ndarray::{s, Array1, Array2, Axis};

use super::dipnet::{DipNet, InputBasis, ReducedCoordinates};
use super::samples::{JacobianMetric, MetricDirections, Samples};
use crate::data::ControlDataset;
use crate::error::{Error, Result};
use crate::map::{ControlledMap, DifferentiableMap, Linearization};
use crate::models::ControlledDiffusion;

fn block_diagonal(a: &Array2<f64>, identity: usize) -> Array2<f64> {
    let (r, c) = a.dim();
    let mut out = Array2::zeros((r + identity, c + identity));
    out.slice_mut(s![..r, ..c]).assign(a);
    for k in 0..identity {
        out[[r + k, c + k]] = 1.0;
    }
    out
}

/// The MR-DINO coordinates for a control data set (m-encoder E and decoder V: d_M × r_M; the
/// first r_U POD modes of the data as output basis) and the training samples in network
/// coordinates, with the control Jacobian targets T_i = Φ_{r_U}ᵀ ∂u_i/∂z compared with
/// S_y ∇φ Dᵀ along the z-directions D (row k: e_{r_M+k}/σ_{c, r_M+k}).
pub fn control_samples(
    data: &ControlDataset,
    encoder: &Array2<f64>,
    decoder: &Array2<f64>,
    output_rank: usize,
) -> Result<(ReducedCoordinates, Samples)> {
    let (n, n_z) = data.z.dim();
    let r_m = encoder.ncols();
    let pod_rank = data.pod_basis.ncols();
    if output_rank == 0 || output_rank > pod_rank {
        return Err(Error::invalid(
            "command line",
            "--output-rank",
            format!("between 1 and the data's POD rank {pod_rank}"),
            output_rank,
        ));
    }
    let x_aug = ndarray::concatenate(Axis(1), &[data.m.view(), data.z.view()])
        .expect("m and z have N rows");
    let mut coords = ReducedCoordinates::fit(
        InputBasis::reduced(block_diagonal(encoder, n_z), block_diagonal(decoder, n_z)),
        data.pod_basis.slice(s![.., ..output_rank]).to_owned(),
        &x_aug,
        &data.u,
    )?;
    // one scale for all POD coefficients (their RMS), so that the relative L2 term weighs the
    // modes by their energy, i.e. measures ‖u − f‖ rather than equally weighted noisy high modes
    let rms = (coords.output_std.iter().map(|s| s * s).sum::<f64>() / output_rank as f64).sqrt();
    coords.output_std.fill(rms);
    coords.output_mean.fill(0.0);
    let mut plain = coords.samples_from(&x_aug, &data.u, None);
    let mut jacobian = Vec::with_capacity(n * output_rank * n_z);
    for j in data.control_jacobian.axis_iter(Axis(0)) {
        jacobian.extend(j.slice(s![..output_rank, ..]).iter().copied());
    }
    let width = r_m + n_z;
    let mut directions = vec![0.0f32; n_z * width];
    for k in 0..n_z {
        directions[k * width + r_m + k] = (1.0 / coords.input_std[r_m + k]) as f32;
    }
    plain.metric = Some(JacobianMetric {
        directions: MetricDirections::Rows {
            d: directions,
            k: n_z,
        },
        output_scale: coords.output_std.iter().map(|&v| v as f32).collect(),
    });
    plain.jacobian = Some(jacobian);
    Ok((coords, plain))
}

/// A trained MR-DINO with the QoI of a control problem in its reduced coordinates.
pub struct ControlSurrogate {
    net: DipNet,
    parameter_dim: usize,
    control_dim: usize,
    /// ΦᵀMΦ (r_U × r_U)
    gram: Array2<f64>,
    /// ΦᵀM d with d = ū − ū_t
    linear: Array1<f64>,
    /// dᵀ M d
    constant: f64,
    /// K = Ẽ_z diag(1/σ_c) W₀ (n_z × width): ∇_z of the first pre-activation's cotangent.
    control_gradient: Array2<f64>,
    /// Ẽ ((d_M + n_z) × r): the network's block-diagonal encoder.
    encoder: Array2<f64>,
}

/// The encoder Ẽ of an MR-DINO (always a formed, reduced basis).
fn control_encoder(net: &DipNet) -> Result<&Array2<f64>> {
    net.coordinates.input_basis.encoder().ok_or_else(|| {
        Error::invalid(
            "surrogate",
            "architecture.input_basis",
            "a reduced input basis (an MR-DINO encodes m in a basis and passes z through)",
            "identity",
        )
    })
}

impl ControlSurrogate {
    /// The surrogate `net` (input (m, z), output the nodal state) for the QoI of `problem`.
    pub fn new(net: DipNet, problem: &ControlledDiffusion) -> Result<Self> {
        let parameter_dim = ControlledMap::parameter_dim(problem);
        let control_dim = ControlledMap::control_dim(problem);
        let rc = &net.coordinates;
        let encoder = control_encoder(&net)?.clone();
        if encoder.nrows() != parameter_dim + control_dim
            || rc.output_basis.nrows() != ControlledMap::output_dim(problem)
        {
            return Err(Error::invalid(
                "surrogate",
                "problem.input_dim / output_dim",
                format!(
                    "({}, {}) for this control problem",
                    parameter_dim + control_dim,
                    ControlledMap::output_dim(problem)
                ),
                format!("({}, {})", encoder.nrows(), rc.output_basis.nrows()),
            ));
        }
        let phi = &rc.output_basis;
        let mut m_phi = Array2::zeros(phi.dim());
        for (j, col) in phi.axis_iter(Axis(1)).enumerate() {
            m_phi
                .column_mut(j)
                .assign(&Array1::from(problem.mass_mul(&col.to_vec())));
        }
        let gram = phi.t().dot(&m_phi);
        let d: Vec<f64> = rc
            .output_shift
            .iter()
            .zip(problem.target())
            .map(|(a, b)| a - b)
            .collect();
        let md = problem.mass_mul(&d);
        let linear = phi.t().dot(&Array1::from(md.clone()));
        let constant = d.iter().zip(&md).map(|(a, b)| a * b).sum();
        let control_gradient = (&encoder.slice(s![parameter_dim.., ..]) / &rc.input_std)
            .dot(&net.network.layers[0].weight);
        Ok(ControlSurrogate {
            encoder,
            control_gradient,
            net,
            parameter_dim,
            control_dim,
            gram,
            linear,
            constant,
        })
    }

    /// Binds parameter samples m_1..m_N: their encodings' share of the first pre-activation is
    /// computed once, (Ẽ_mᵀ(m_i − m̄) − μ)/σ · W₀ + b₀, as one (N × d_M)(d_M × r) product.
    pub fn bind_samples(&self, samples: &[Vec<f64>]) -> Result<SampledControlSurrogate<'_>> {
        let rc = &self.net.coordinates;
        let d_m = self.parameter_dim;
        let e_m = self.encoder.slice(s![..d_m, ..]);
        let mut deviations = Array2::zeros((samples.len(), d_m));
        for (i, m) in samples.iter().enumerate() {
            crate::error::check_finite_vector(m, d_m, "parameter sample", "m")?;
            deviations
                .row_mut(i)
                .assign(&(&ndarray::ArrayView1::from(m) - &rc.input_shift.slice(s![..d_m])));
        }
        // all encodings as one matrix product (N × d_M)(d_M × r)
        let x_m = (deviations.dot(&e_m) - &rc.input_mean) / &rc.input_std;
        let first = &self.net.network.layers[0];
        Ok(SampledControlSurrogate {
            surrogate: self,
            parameter_part: x_m.dot(&first.weight) + &first.bias,
        })
    }
}

/// The surrogate's Q(·, m_i) at fixed samples. The network input is x_i = x_i^(m) + x^(z) (the
/// parameter's and the control's parts of the normalized reduced input), so the first
/// pre-activation Z₀ = X W₀ + b₀ splits into a per-sample part computed once here and one
/// vector per control; ∇_z Q_i = Ẽ_z diag(1/σ_c) W₀ g_i = K g_i with K precomputed. Each
/// evaluation is then a batched pass through the hidden layers, split over the threads.
pub struct SampledControlSurrogate<'a> {
    surrogate: &'a ControlSurrogate,
    /// N × width: (x_i^(m))ᵀ W₀ + b₀.
    parameter_part: Array2<f64>,
}

impl SampledControlSurrogate<'_> {
    /// The number N of bound parameter samples.
    pub fn len(&self) -> usize {
        self.parameter_part.nrows()
    }

    /// Whether no samples are bound.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Q_i and ∇_z Q_i (rows) for the samples in `rows`.
    fn evaluate_rows(
        &self,
        control_part: &Array1<f64>,
        rows: std::ops::Range<usize>,
    ) -> (Array1<f64>, Array2<f64>) {
        let s = self.surrogate;
        let rc = &s.net.coordinates;
        let pre = &self.parameter_part.slice(s![rows, ..]) + control_part;
        let mut values = Array1::zeros(pre.nrows());
        let (_, g) = s.net.network.vjp_from_first_preactivation(pre, |phi| {
            let psi = phi * &rc.output_std + &rc.output_mean;
            let g_psi = psi.dot(&s.gram);
            values = (&psi * &g_psi).sum_axis(Axis(1)) + 2.0 * psi.dot(&s.linear) + s.constant;
            (g_psi + &s.linear) * 2.0 * &rc.output_std
        });
        (values, g.dot(&s.control_gradient.t()))
    }

    /// Q_i and ∇_z Q_i (rows) for all samples.
    pub fn evaluate(&self, z: &[f64]) -> Result<(Array1<f64>, Array2<f64>)> {
        use rayon::prelude::*;
        let s = self.surrogate;
        crate::error::check_finite_vector(z, s.control_dim, "control", "z")?;
        let rc = &s.net.coordinates;
        let d_m = s.parameter_dim;
        let dz = &ndarray::ArrayView1::from(z) - &rc.input_shift.slice(s![d_m..]);
        let x_z = s.encoder.slice(s![d_m.., ..]).t().dot(&dz) / &rc.input_std;
        let control_part = x_z.dot(&s.net.network.layers[0].weight);
        let n = self.parameter_part.nrows();
        let chunks = rayon::current_num_threads().clamp(1, n.max(1));
        let size = n.div_ceil(chunks);
        let parts: Vec<(Array1<f64>, Array2<f64>)> = (0..chunks)
            .into_par_iter()
            .map(|c| self.evaluate_rows(&control_part, c * size..((c + 1) * size).min(n)))
            .collect();
        let values = ndarray::concatenate(
            Axis(0),
            &parts.iter().map(|p| p.0.view()).collect::<Vec<_>>(),
        )
        .expect("same widths");
        let gradients = ndarray::concatenate(
            Axis(0),
            &parts.iter().map(|p| p.1.view()).collect::<Vec<_>>(),
        )
        .expect("same widths");
        Ok((values, gradients))
    }
}

/// The surrogate's state and control derivative at (z, m), from the network's linearization on
/// the augmented input: (∂u/∂z) v = J (0, v), (∂u/∂z)ᵀ w = (Jᵀ w)_z.
struct ControlPart<'a> {
    inner: Box<dyn Linearization + 'a>,
    parameter_dim: usize,
}

impl Linearization for ControlPart<'_> {
    fn output(&self) -> &[f64] {
        self.inner.output()
    }
    fn jvp(&self, v: &[f64]) -> Vec<f64> {
        let mut x = vec![0.0; self.parameter_dim];
        x.extend_from_slice(v);
        self.inner.jvp(&x)
    }
    fn vjp(&self, w: &[f64]) -> Vec<f64> {
        self.inner.vjp(w)[self.parameter_dim..].to_vec()
    }
}

impl ControlledMap for ControlSurrogate {
    fn control_dim(&self) -> usize {
        self.control_dim
    }
    fn parameter_dim(&self) -> usize {
        self.parameter_dim
    }
    fn output_dim(&self) -> usize {
        self.net.output_dim()
    }
    fn linearize_control(&self, z: &[f64], m: &[f64]) -> Result<Box<dyn Linearization + '_>> {
        let mut x = m.to_vec();
        x.extend_from_slice(z);
        Ok(Box::new(ControlPart {
            inner: self.net.linearize(&x)?,
            parameter_dim: self.parameter_dim,
        }))
    }
}

/// Test accuracies of a control surrogate on a control data set: `l2_accuracy` of the state u
/// (ℓ² over the vertices) and `reduced_h1_accuracy` of the control Jacobian in the test data's
/// POD basis, 1 − sqrt(E[‖Φᵀ(∂u/∂z − ∂f/∂z)‖²_F / ‖Φᵀ∂u/∂z‖²_F]), with the eq. 3.6 variants.
pub fn control_metrics(net: &DipNet, test: &ControlDataset) -> Result<super::Metrics> {
    let rc = &net.coordinates;
    let encoder = control_encoder(net)?;
    let (n, n_z) = test.z.dim();
    let d_m = test.m.ncols();
    let e_z = encoder.slice(s![d_m.., ..]);
    let projection = test.pod_basis.t().dot(&rc.output_basis);
    let mut l2 = Vec::with_capacity(n);
    let mut h1 = Vec::with_capacity(n);
    for i in 0..n {
        let mut x = test.m.row(i).to_vec();
        x.extend(test.z.row(i).iter());
        let c = crate::linalg::transpose_mul(
            encoder,
            (&ndarray::ArrayView1::from(&x) - &rc.input_shift).view(),
        );
        let xn = (c - &rc.input_mean) / &rc.input_std;
        let (phi, dphi) = net.network.forward_with_jacobian(xn.view());
        let psi = &rc.output_mean + &(&rc.output_std * &phi);
        let u = &rc.output_shift + &rc.output_basis.dot(&psi);
        let truth = test.u.row(i);
        let err: f64 = u.iter().zip(truth).map(|(a, b)| (a - b).powi(2)).sum();
        l2.push(
            err / truth
                .iter()
                .map(|v| v * v)
                .sum::<f64>()
                .max(f64::MIN_POSITIVE),
        );
        let k = (dphi * rc.output_std.view().insert_axis(Axis(1))
            / rc.input_std.view().insert_axis(Axis(0)))
        .dot(&e_z.t());
        let predicted = projection.dot(&k);
        let stored = test.control_jacobian.index_axis(Axis(0), i);
        let (mut num, mut den) = (0.0, 0.0);
        for (p, t) in predicted.iter().zip(stored.iter()) {
            let t = f64::from(*t);
            num += (p - t).powi(2);
            den += t * t;
        }
        debug_assert_eq!(stored.dim(), (projection.nrows(), n_z));
        h1.push(num / den.max(f64::MIN_POSITIVE));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let rms_accuracy = |v: &[f64]| 1.0 - mean(v).sqrt();
    let mean_accuracy = |v: &[f64]| 1.0 - v.iter().map(|e| e.sqrt()).sum::<f64>() / v.len() as f64;
    Ok(super::Metrics {
        samples: n,
        l2_accuracy: rms_accuracy(&l2),
        h1_accuracy: None,
        reduced_h1_accuracy: Some(rms_accuracy(&h1)),
        l2_accuracy_mean_relative: mean_accuracy(&l2),
        h1_accuracy_mean_relative: None,
        reduced_h1_accuracy_mean_relative: Some(mean_accuracy(&h1)),
    })
}
