//! DIPNet (paper eq. 2.19): a reduced-basis network f(m) = q̄ + U ψ(Eᵀ(m − m̄)), where
//! - E (d_M × r_M) is an input encoder and V its decoder (Eᵀ V = I; active subspace: E = R V),
//!   or E = V = I for the paper's "Generic" network on the full input (never formed),
//! - U (d_Q × r_Q) is an ℓ²-orthonormal output basis (POD; identity when d_Q is small),
//! - ψ(c) = μ_y + σ_y ⊙ φ((c − μ_c) / σ_c) is the MLP φ with input/output normalization.
//!
//! Its Jacobian is ∇f(m) = U diag(σ_y) ∇φ diag(1/σ_c) Eᵀ: with the reduced Jacobian
//! J_r = U diag(σ_y) ∇φ diag(1/σ_c) (d_Q × r_M), J v = J_r (Eᵀ v) and Jᵀ w = E (J_rᵀ w), so
//! derivatives cost O((d_Q + d_M) r_M) after one network evaluation. The training targets live in
//! the reduced coordinates: y = Uᵀ(q − q̄) and Uᵀ J V (the H1 loss then costs O(r_Q r_M)).

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use super::dense::DenseMlp;
use super::mlp::Mlp;
use super::samples::{JacobianMetric, MetricDirections, Samples};
use crate::error::{Error, Result};
use crate::map::{DifferentiableMap, Linearization};

/// Jacobian data of a training set.
#[derive(Debug, Clone, Copy)]
pub enum JacobianData<'a> {
    /// J (N × d_Q × d_M).
    Full(&'a ndarray::Array3<f32>),
    /// J E_data (N × d_Q × r) for a basis whose first r_M columns are the encoder E.
    ProjectedOnEncoder(&'a ndarray::Array3<f32>),
}

/// The input side of the network: coefficients c = Eᵀ x of a parameter deviation x = m − m̄
/// (ℓ² pairing), and m ≈ m̄ + V c.
#[derive(Debug, Clone, PartialEq)]
pub enum InputBasis {
    /// E = V = I on ℝ^d (not formed): the network sees every coordinate of m. This is the
    /// paper's "Generic" encoder–decoder, whose first layer is the encoder.
    Identity { dim: usize },
    /// E, V (d_M × r_M) with Eᵀ V = I: active subspace (E = R V, V R-orthonormal) or KLE.
    Reduced {
        encoder: Array2<f64>,
        decoder: Array2<f64>,
    },
}

impl InputBasis {
    /// A reduced basis; E and V must have the same shape.
    pub fn reduced(encoder: Array2<f64>, decoder: Array2<f64>) -> Self {
        InputBasis::Reduced { encoder, decoder }
    }

    /// d_M
    pub fn full_dim(&self) -> usize {
        match self {
            InputBasis::Identity { dim } => *dim,
            InputBasis::Reduced { encoder, .. } => encoder.nrows(),
        }
    }

    /// r_M (= d_M for the identity).
    pub fn rank(&self) -> usize {
        match self {
            InputBasis::Identity { dim } => *dim,
            InputBasis::Reduced { encoder, .. } => encoder.ncols(),
        }
    }

    /// True for E = V = I.
    pub fn is_identity(&self) -> bool {
        matches!(self, InputBasis::Identity { .. })
    }

    /// E, when formed.
    pub fn encoder(&self) -> Option<&Array2<f64>> {
        match self {
            InputBasis::Identity { .. } => None,
            InputBasis::Reduced { encoder, .. } => Some(encoder),
        }
    }

    /// V, when formed.
    pub fn decoder(&self) -> Option<&Array2<f64>> {
        match self {
            InputBasis::Identity { .. } => None,
            InputBasis::Reduced { decoder, .. } => Some(decoder),
        }
    }

    /// c = Eᵀ x.
    pub fn encode(&self, x: ArrayView1<f64>) -> Array1<f64> {
        match self {
            InputBasis::Identity { .. } => x.to_owned(),
            InputBasis::Reduced { encoder, .. } => crate::linalg::transpose_mul(encoder, x),
        }
    }

    /// E c: the ℓ² adjoint of [`Self::encode`].
    pub fn encode_adjoint(&self, c: ArrayView1<f64>) -> Array1<f64> {
        match self {
            InputBasis::Identity { .. } => c.to_owned(),
            InputBasis::Reduced { encoder, .. } => encoder.dot(&c),
        }
    }

    /// The coefficients of many deviations at once: X E for rows X (N × d_M).
    pub fn encode_rows(&self, x: &Array2<f64>) -> Array2<f64> {
        match self {
            InputBasis::Identity { .. } => x.clone(),
            InputBasis::Reduced { encoder, .. } => x.dot(encoder),
        }
    }

    /// K Eᵀ for K (n × r_M): a Jacobian in the coefficients as one in m.
    pub fn expand_columns(&self, k: ArrayView2<f64>) -> Array2<f64> {
        match self {
            InputBasis::Identity { .. } => k.to_owned(),
            InputBasis::Reduced { encoder, .. } => k.dot(&encoder.t()),
        }
    }

    /// J V for J (n × d_M): a Jacobian in m restricted to the decoder's directions.
    pub fn restrict_columns(&self, j: ArrayView2<f64>) -> Array2<f64> {
        match self {
            InputBasis::Identity { .. } => j.to_owned(),
            InputBasis::Reduced { decoder, .. } => j.dot(decoder),
        }
    }
}

/// Affine maps and bases around the MLP.
#[derive(Debug, Clone)]
pub struct ReducedCoordinates {
    /// E and V: coefficients c = Eᵀ (m − m̄), m ≈ m̄ + V c.
    pub input_basis: InputBasis,
    /// m̄ (d_M).
    pub input_shift: Array1<f64>,
    /// U (d_Q × r_Q), ℓ²-orthonormal.
    pub output_basis: Array2<f64>,
    /// q̄ (d_Q).
    pub output_shift: Array1<f64>,
    /// μ_c, σ_c (r_M): normalization of the coefficients.
    pub input_mean: Array1<f64>,
    pub input_std: Array1<f64>,
    /// μ_y, σ_y (r_Q): normalization of the reduced outputs.
    pub output_mean: Array1<f64>,
    pub output_std: Array1<f64>,
}

impl ReducedCoordinates {
    /// Reduced coordinates for samples (m: N × d_M, q: N × d_Q): shifts are the sample means,
    /// normalization statistics those of the reduced samples (σ floored at 1e-12).
    pub fn fit(
        input_basis: InputBasis,
        output_basis: Array2<f64>,
        m: &Array2<f64>,
        q: &Array2<f64>,
    ) -> Result<Self> {
        let n = m.nrows();
        if n < 2 || q.nrows() != n {
            return Err(Error::invalid(
                "training data",
                "samples",
                "at least 2 samples with m and q",
                n,
            ));
        }
        let shapes_fit = match &input_basis {
            InputBasis::Identity { dim } => *dim == m.ncols(),
            InputBasis::Reduced { encoder, decoder } => {
                encoder.nrows() == m.ncols() && decoder.dim() == encoder.dim()
            }
        };
        if !shapes_fit {
            let found = match &input_basis {
                InputBasis::Identity { dim } => format!("the identity on ℝ^{dim}"),
                InputBasis::Reduced { encoder, decoder } => {
                    format!("{:?} and {:?}", encoder.dim(), decoder.dim())
                }
            };
            return Err(Error::invalid(
                "input basis",
                "encoder / decoder",
                format!("two {} × r arrays for d_M = {}", m.ncols(), m.ncols()),
                found,
            ));
        }
        if output_basis.nrows() != q.ncols() || output_basis.ncols() > q.ncols() {
            return Err(Error::invalid(
                "output basis",
                "rank",
                format!("a {} × r_Q basis with r_Q ≤ d_Q = {}", q.ncols(), q.ncols()),
                format!("{:?}", output_basis.dim()),
            ));
        }
        let input_shift = m.mean_axis(Axis(0)).expect("n ≥ 2");
        let output_shift = q.mean_axis(Axis(0)).expect("n ≥ 2");
        let c = input_basis.encode_rows(&(m - &input_shift));
        let y = (q - &output_shift).dot(&output_basis);
        let stats = |a: &Array2<f64>| {
            (
                a.mean_axis(Axis(0)).expect("n ≥ 2"),
                a.std_axis(Axis(0), 1.0).mapv(|s| s.max(1e-12)),
            )
        };
        let (input_mean, input_std) = stats(&c);
        let (output_mean, output_std) = stats(&y);
        Ok(ReducedCoordinates {
            input_basis,
            input_shift,
            output_basis,
            output_shift,
            input_mean,
            input_std,
            output_mean,
            output_std,
        })
    }

    /// True when U = I (r_Q = d_Q): decoding is then the identity and is skipped.
    pub fn output_basis_is_identity(&self) -> bool {
        let u = &self.output_basis;
        u.is_square()
            && u.indexed_iter()
                .all(|((i, j), &x)| x == if i == j { 1.0 } else { 0.0 })
    }

    /// U y for a reduced output y.
    fn decode(&self, y: Array1<f64>) -> Array1<f64> {
        if self.output_basis_is_identity() {
            y
        } else {
            self.output_basis.dot(&y)
        }
    }

    /// U K for a reduced Jacobian K (r_Q × r_M).
    fn decode_columns(&self, k: Array2<f64>) -> Array2<f64> {
        if self.output_basis_is_identity() {
            k
        } else {
            self.output_basis.dot(&k)
        }
    }

    /// Normalized network inputs (c − μ_c)/σ_c for parameters m (N × d_M).
    pub fn network_inputs(&self, m: &Array2<f64>) -> Array2<f64> {
        (self.input_basis.encode_rows(&(m - &self.input_shift)) - &self.input_mean)
            / &self.input_std
    }

    /// Training samples in network coordinates: x = (c − μ_c)/σ_c, targets (y − μ_y)/σ_y, and
    /// Jacobian targets in the metric of the full Jacobian (see [`Self::samples_from`]).
    pub fn samples(
        &self,
        m: &Array2<f64>,
        q: &Array2<f64>,
        jacobians: Option<&ndarray::Array3<f32>>,
    ) -> Samples {
        self.samples_from(m, q, jacobians.map(JacobianData::Full))
    }

    /// Training samples with full Jacobians J or their projections J E.
    ///
    /// The surrogate's Jacobian is ∇f = K Eᵀ with K = U S_y ∇φ S_c⁻¹ (S = diag σ). With
    /// G = EᵀE = G^{1/2} G^{1/2}, the full-Jacobian error splits (ℓ²-orthogonally) into a part
    /// no network can change and ‖(K − J E G⁻¹) G^{1/2}‖_F, and since U is orthonormal that is
    ///   ‖S_y ∇φ (S_c⁻¹ G^{1/2}) − Uᵀ J E G^{−1/2}‖_F  (+ the part of J E G^{−1/2} outside U).
    /// So the Jacobian target is T_i = Uᵀ J_i E G^{−1/2} (r_Q × r_M, O(r_Q r_M) per sample),
    /// compared with S_y ∇φ Dᵀ along the directions Dᵀ = S_c⁻¹ G^{1/2}: training on it
    /// minimizes the paper's full H1 error, not an error distorted by the basis scaling.
    /// For the identity input basis (G = I) the directions are the diagonal S_c⁻¹ and the
    /// target is Uᵀ J_i, d_Q × d_M: the generic network's H1 loss costs O(d_Q d_M) per sample.
    pub fn samples_from(
        &self,
        m: &Array2<f64>,
        q: &Array2<f64>,
        jacobians: Option<JacobianData<'_>>,
    ) -> Samples {
        let x = self.network_inputs(m);
        let y = ((q - &self.output_shift).dot(&self.output_basis) - &self.output_mean)
            / &self.output_std;
        let (r_m, r_q) = (self.input_basis.rank(), self.output_basis.ncols());
        // G^{1/2} and G^{−1/2} of a formed encoder (None: G = I)
        let gram_roots = self.input_basis.encoder().map(|encoder| {
            let gram = encoder.t().dot(encoder);
            let (values, vectors) = crate::linalg::eigen::symmetric_eigen(&gram);
            let power = |p: f64| {
                let scaled = &vectors * &values.mapv(|l| l.max(f64::MIN_POSITIVE).powf(p));
                scaled.dot(&vectors.t())
            };
            (power(0.5), power(-0.5))
        });
        let output_is_identity = self.output_basis_is_identity();
        let jacobian = jacobians.map(|data| {
            let js = match data {
                JacobianData::Full(js) | JacobianData::ProjectedOnEncoder(js) => js,
            };
            let mut out = Vec::with_capacity(js.shape()[0] * r_q * r_m);
            for j in js.axis_iter(Axis(0)) {
                let je = match (data, self.input_basis.encoder()) {
                    (JacobianData::Full(_), Some(encoder)) => j.mapv(f64::from).dot(encoder),
                    (JacobianData::Full(_), None) => j.mapv(f64::from),
                    (JacobianData::ProjectedOnEncoder(_), _) => {
                        j.slice(ndarray::s![.., ..r_m]).mapv(f64::from)
                    }
                };
                let projected = if output_is_identity {
                    je
                } else {
                    self.output_basis.t().dot(&je)
                };
                let target = match &gram_roots {
                    Some((_, inv_sqrt_g)) => projected.dot(inv_sqrt_g),
                    None => projected,
                };
                out.extend(target.iter().map(|&v| v as f32));
            }
            out
        });
        let directions = match &gram_roots {
            // D = (S_c⁻¹ G^{1/2})ᵀ = G^{1/2} S_c⁻¹: row l is column l of S_c⁻¹ G^{1/2}
            Some((sqrt_g, _)) => MetricDirections::Rows {
                d: (0..r_m * r_m)
                    .map(|i| (sqrt_g[[i % r_m, i / r_m]] / self.input_std[i % r_m]) as f32)
                    .collect(),
                k: r_m,
            },
            None => MetricDirections::Diagonal(
                self.input_std.iter().map(|&s| (1.0 / s) as f32).collect(),
            ),
        };
        Samples {
            count: m.nrows(),
            input: r_m,
            output: r_q,
            x: x.iter().map(|&v| v as f32).collect(),
            q: y.iter().map(|&v| v as f32).collect(),
            metric: jacobian.as_ref().map(|_| JacobianMetric {
                directions,
                output_scale: self.output_std.iter().map(|&v| v as f32).collect(),
            }),
            jacobian,
        }
    }
}

/// A trained DIPNet: the MLP φ (f64 inference copy) and its reduced coordinates.
#[derive(Debug, Clone)]
pub struct DipNet {
    pub network: DenseMlp,
    pub coordinates: ReducedCoordinates,
}

impl DipNet {
    /// The DIPNet of a trained burn MLP.
    pub fn new(mlp: &Mlp, coordinates: ReducedCoordinates) -> Self {
        DipNet {
            network: DenseMlp::from_mlp(mlp),
            coordinates,
        }
    }

    /// The reduced input coefficients c = Eᵀ(m − m̄) of a parameter.
    pub fn encode(&self, m: &[f64]) -> Array1<f64> {
        let rc = &self.coordinates;
        rc.input_basis
            .encode((&ArrayView1::from(m) - &rc.input_shift).view())
    }

    /// The surrogate at the reduced coefficients c: f = q̄ + U ψ(c) and J_r = ∂f/∂c (d_Q × r_M).
    pub fn evaluate_reduced(&self, c: &Array1<f64>) -> (Array1<f64>, Array2<f64>) {
        let rc = &self.coordinates;
        let x = (c - &rc.input_mean) / &rc.input_std;
        let (phi, dphi) = self.network.forward_with_jacobian(x.view());
        let psi = &rc.output_mean + &(&rc.output_std * &phi);
        let output = &rc.output_shift + &rc.decode(psi);
        let scaled = dphi * rc.output_std.view().insert_axis(Axis(1))
            / rc.input_std.view().insert_axis(Axis(0));
        (output, rc.decode_columns(scaled))
    }
}

/// The DIPNet at one parameter: f(m) and the reduced Jacobian J_r.
pub struct DipNetLinearization<'a> {
    net: &'a DipNet,
    output: Vec<f64>,
    /// J_r = U diag(σ_y) ∇φ diag(1/σ_c), d_Q × r_M.
    reduced_jacobian: Array2<f64>,
}

impl DifferentiableMap for DipNet {
    fn input_dim(&self) -> usize {
        self.coordinates.input_basis.full_dim()
    }
    fn output_dim(&self) -> usize {
        self.coordinates.output_basis.nrows()
    }
    /// f(m) without the Jacobian: encode, φ, decode.
    fn evaluate(&self, m: &[f64]) -> Result<Vec<f64>> {
        crate::error::check_finite_vector(m, self.input_dim(), "surrogate input", "m")?;
        let rc = &self.coordinates;
        let x = (self.encode(m) - &rc.input_mean) / &rc.input_std;
        let psi = &rc.output_mean + &(&rc.output_std * &self.network.forward(x.view()));
        Ok((&rc.output_shift + &rc.decode(psi)).to_vec())
    }

    fn input_encoder(&self) -> Option<&Array2<f64>> {
        self.coordinates.input_basis.encoder()
    }

    fn encode(&self, m: &[f64]) -> Option<Vec<f64>> {
        self.input_encoder()?;
        Some(DipNet::encode(self, m).to_vec())
    }

    /// q = q̄ + U(μ_y + σ_y ⊙ φ(x)), x = (e − μ_c)/σ_c; the pullback is
    /// diag(1/σ_c) ∇φᵀ (σ_y ⊙ Uᵀ w), by [`DenseMlp::forward_vjp`].
    fn reduced_pullback(
        &self,
        e: &[f64],
        cotangent: &mut dyn FnMut(&[f64]) -> Vec<f64>,
    ) -> Option<(Vec<f64>, Vec<f64>)> {
        self.input_encoder()?;
        let rc = &self.coordinates;
        let x = (&ArrayView1::from(e) - &rc.input_mean) / &rc.input_std;
        let mut output = Vec::new();
        let (_, g) = self.network.forward_vjp(x.view(), |phi| {
            let psi = &rc.output_mean + &(&rc.output_std * phi);
            output = (&rc.output_shift + &rc.decode(psi)).to_vec();
            let w = Array1::from(cotangent(&output));
            let reduced = if rc.output_basis_is_identity() {
                w
            } else {
                rc.output_basis.t().dot(&w)
            };
            reduced * &rc.output_std
        });
        Some((output, (g / &rc.input_std).to_vec()))
    }

    fn linearize(&self, m: &[f64]) -> Result<Box<dyn Linearization + '_>> {
        crate::error::check_finite_vector(m, self.input_dim(), "surrogate input", "m")?;
        let (output, reduced_jacobian) = self.evaluate_reduced(&self.encode(m));
        Ok(Box::new(DipNetLinearization {
            net: self,
            output: output.to_vec(),
            reduced_jacobian,
        }))
    }
}

impl Linearization for DipNetLinearization<'_> {
    fn output(&self) -> &[f64] {
        &self.output
    }
    fn jvp(&self, v: &[f64]) -> Vec<f64> {
        let c = self.net.coordinates.input_basis.encode(ArrayView1::from(v));
        self.reduced_jacobian.dot(&c).to_vec()
    }
    fn vjp(&self, w: &[f64]) -> Vec<f64> {
        let c = self.reduced_jacobian.t().dot(&ArrayView1::from(w));
        self.net
            .coordinates
            .input_basis
            .encode_adjoint(c.view())
            .to_vec()
    }
    fn jacobian(&self) -> Array2<f64> {
        self.net
            .coordinates
            .input_basis
            .expand_columns(self.reduced_jacobian.view())
    }
    /// J_r, for a network with a formed encoder (for the identity basis J_r is J itself).
    fn reduced_jacobian(&self) -> Option<&Array2<f64>> {
        (!self.net.coordinates.input_basis.is_identity()).then_some(&self.reduced_jacobian)
    }
}
