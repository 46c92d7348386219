//! DIPNet (paper eq. 2.19): a reduced-basis network f(m) = q̄ + U ψ(Eᵀ(m − m̄)), where
//! - E (d_M × r_M) is an input encoder and V its decoder (Eᵀ V = I; active subspace: E = R V),
//! - U (d_Q × r_Q) is an ℓ²-orthonormal output basis (POD; identity when d_Q is small),
//! - ψ(c) = μ_y + σ_y ⊙ φ((c − μ_c) / σ_c) is the MLP φ with input/output normalization.
//!
//! Its Jacobian is ∇f(m) = U diag(σ_y) ∇φ diag(1/σ_c) Eᵀ: with the reduced Jacobian
//! J_r = U diag(σ_y) ∇φ diag(1/σ_c) (d_Q × r_M), J v = J_r (Eᵀ v) and Jᵀ w = E (J_rᵀ w), so
//! derivatives cost O((d_Q + d_M) r_M) after one network evaluation. The training targets live in
//! the reduced coordinates: y = Uᵀ(q − q̄) and Uᵀ J V (the H1 loss then costs O(r_Q r_M)).

use burn::tensor::{Device, Tensor, TensorData};
use ndarray::{Array1, Array2, Axis};

use super::mlp::Mlp;
use super::train::Samples;
use crate::error::{Error, Result};
use crate::map::{DifferentiableMap, Linearization};

/// Affine maps and bases around the MLP.
#[derive(Debug, Clone)]
pub struct ReducedCoordinates {
    /// E (d_M × r_M): coefficients c = Eᵀ (m − m̄).
    pub encoder: Array2<f64>,
    /// V (d_M × r_M): m ≈ m̄ + V c.
    pub decoder: Array2<f64>,
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
        encoder: Array2<f64>,
        decoder: Array2<f64>,
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
        if encoder.nrows() != m.ncols() || decoder.dim() != encoder.dim() {
            return Err(Error::invalid(
                "input basis",
                "encoder / decoder",
                format!("two {} × r arrays for d_M = {}", m.ncols(), m.ncols()),
                format!("{:?} and {:?}", encoder.dim(), decoder.dim()),
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
        let c = (m - &input_shift).dot(&encoder);
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
            encoder,
            decoder,
            input_shift,
            output_basis,
            output_shift,
            input_mean,
            input_std,
            output_mean,
            output_std,
        })
    }

    /// Normalized network inputs (c − μ_c)/σ_c for parameters m (N × d_M).
    pub fn network_inputs(&self, m: &Array2<f64>) -> Array2<f64> {
        ((m - &self.input_shift).dot(&self.encoder) - &self.input_mean) / &self.input_std
    }

    /// Training samples in network coordinates: x = (c − μ_c)/σ_c, targets (y − μ_y)/σ_y and,
    /// with Jacobians J (N × d_Q × d_M), diag(1/σ_y) Uᵀ J V diag(σ_c).
    pub fn samples(
        &self,
        m: &Array2<f64>,
        q: &Array2<f64>,
        jacobians: Option<&ndarray::Array3<f32>>,
    ) -> Samples {
        let x = self.network_inputs(m);
        let y = ((q - &self.output_shift).dot(&self.output_basis) - &self.output_mean)
            / &self.output_std;
        let (r_m, r_q) = (self.encoder.ncols(), self.output_basis.ncols());
        let jacobian = jacobians.map(|js| {
            let mut out = Vec::with_capacity(js.shape()[0] * r_q * r_m);
            for j in js.axis_iter(Axis(0)) {
                let reduced = self
                    .output_basis
                    .t()
                    .dot(&j.mapv(f64::from))
                    .dot(&self.decoder);
                for a in 0..r_q {
                    for b in 0..r_m {
                        out.push((reduced[[a, b]] * self.input_std[b] / self.output_std[a]) as f32);
                    }
                }
            }
            out
        });
        Samples {
            count: m.nrows(),
            input: r_m,
            output: r_q,
            x: x.iter().map(|&v| v as f32).collect(),
            q: y.iter().map(|&v| v as f32).collect(),
            jacobian,
        }
    }
}

/// A trained DIPNet: the MLP φ and its reduced coordinates.
pub struct DipNet {
    pub mlp: Mlp,
    pub coordinates: ReducedCoordinates,
    /// Device the MLP evaluates on (no autodiff needed for inference).
    pub device: Device,
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
        self.coordinates.encoder.nrows()
    }
    fn output_dim(&self) -> usize {
        self.coordinates.output_basis.nrows()
    }
    fn linearize(&self, m: &[f64]) -> Result<Box<dyn Linearization + '_>> {
        crate::error::check_finite_vector(m, self.input_dim(), "surrogate input", "m")?;
        let rc = &self.coordinates;
        let x =
            rc.network_inputs(&Array2::from_shape_vec((1, m.len()), m.to_vec()).expect("one row"));
        let (r_m, r_q) = (rc.encoder.ncols(), rc.output_basis.ncols());
        let xt = Tensor::<2>::from_data(
            TensorData::new(x.iter().map(|&v| v as f32).collect::<Vec<_>>(), [1, r_m]),
            &self.device,
        );
        let (phi, dphi) = self.mlp.forward_with_jacobian(xt);
        let phi: Vec<f32> = phi.into_data().try_to_vec().expect("f32");
        let dphi: Vec<f32> = dphi.into_data().try_to_vec().expect("f32");
        let psi = Array1::from_shape_fn(r_q, |a| {
            rc.output_mean[a] + rc.output_std[a] * f64::from(phi[a])
        });
        let output = (&rc.output_shift + &rc.output_basis.dot(&psi)).to_vec();
        let scaled = Array2::from_shape_fn((r_q, r_m), |(a, b)| {
            rc.output_std[a] * f64::from(dphi[a * r_m + b]) / rc.input_std[b]
        });
        Ok(Box::new(DipNetLinearization {
            net: self,
            output,
            reduced_jacobian: rc.output_basis.dot(&scaled),
        }))
    }
}

impl Linearization for DipNetLinearization<'_> {
    fn output(&self) -> &[f64] {
        &self.output
    }
    fn jvp(&self, v: &[f64]) -> Vec<f64> {
        let c = self
            .net
            .coordinates
            .encoder
            .t()
            .dot(&Array1::from(v.to_vec()));
        self.reduced_jacobian.dot(&c).to_vec()
    }
    fn vjp(&self, w: &[f64]) -> Vec<f64> {
        let c = self.reduced_jacobian.t().dot(&Array1::from(w.to_vec()));
        self.net.coordinates.encoder.dot(&c).to_vec()
    }
    fn jacobian(&self) -> Array2<f64> {
        self.reduced_jacobian.dot(&self.net.coordinates.encoder.t())
    }
}
