//! The trained MLP φ for inference in f64 with plain dense algebra: no autodiff graph, no
//! per-op dispatch, so one evaluation with its input Jacobian costs only its flops. This is what
//! the surrogate runs inside the outer loops (thousands of single-parameter calls).
//!
//! Column convention: z_l = W_lᵀ h_l + b_l with W_l stored [in, out] (burn's layout), h_{l+1} =
//! softplus(z_l), φ = z_L. The Jacobian is the product ∇φ = W_Lᵀ S_{L−1} W_{L−1}ᵀ ⋯ S₀ W₀ᵀ with
//! S_l = diag(sigmoid(z_l)); it is accumulated from the output side (reverse mode) when the
//! output is narrower than the input, from the input side otherwise.

use ndarray::{Array1, Array2, ArrayView1, Axis};

use super::mlp::Mlp;

/// One affine layer: W \[in, out\], b \[out\].
#[derive(Debug, Clone)]
pub struct DenseLayer {
    pub weight: Array2<f64>,
    pub bias: Array1<f64>,
}

/// φ with f64 weights.
#[derive(Debug, Clone)]
pub struct DenseMlp {
    pub layers: Vec<DenseLayer>,
}

/// (softplus(z), sigmoid(z)) from one exponential e = exp(−|z|):
/// softplus = max(z, 0) + ln(1 + e), sigmoid = 1/(1 + e) for z ≥ 0 and e/(1 + e) otherwise.
fn activate<D: ndarray::Dimension>(
    z: &ndarray::Array<f64, D>,
) -> (ndarray::Array<f64, D>, ndarray::Array<f64, D>) {
    let mut h = z.clone();
    let mut slope = z.clone();
    ndarray::Zip::from(&mut h)
        .and(&mut slope)
        .and(z)
        .for_each(|h, s, &z| {
            let e = (-z.abs()).exp();
            *h = z.max(0.0) + e.ln_1p();
            let inv = 1.0 / (1.0 + e);
            *s = if z >= 0.0 { inv } else { e * inv };
        });
    (h, slope)
}

impl DenseMlp {
    /// Copies the weights of a burn MLP.
    pub fn from_mlp(mlp: &Mlp) -> Self {
        let layers = mlp
            .weights()
            .into_iter()
            .map(|(w, b, i, o)| DenseLayer {
                weight: Array2::from_shape_vec((i, o), w.into_iter().map(f64::from).collect())
                    .expect("weight shape"),
                bias: b.into_iter().map(f64::from).collect(),
            })
            .collect();
        DenseMlp { layers }
    }

    pub fn input_dim(&self) -> usize {
        self.layers[0].weight.nrows()
    }

    pub fn output_dim(&self) -> usize {
        self.layers[self.layers.len() - 1].weight.ncols()
    }

    /// φ(x) and the activation slopes sigmoid(z_l) of the hidden layers.
    fn forward_with_slopes(&self, x: ArrayView1<f64>) -> (Array1<f64>, Vec<Array1<f64>>) {
        let mut h = x.to_owned();
        let mut slopes = Vec::with_capacity(self.layers.len() - 1);
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            let z = layer.weight.t().dot(&h) + &layer.bias;
            if l == last {
                return (z, slopes);
            }
            let (activated, slope) = activate(&z);
            slopes.push(slope);
            h = activated;
        }
        unreachable!("the loop returns at the output layer")
    }

    /// φ(x).
    pub fn forward(&self, x: ArrayView1<f64>) -> Array1<f64> {
        self.forward_with_slopes(x).0
    }

    /// φ(x) and ∇φ(x) (output × input).
    pub fn forward_with_jacobian(&self, x: ArrayView1<f64>) -> (Array1<f64>, Array2<f64>) {
        let (y, slopes) = self.forward_with_slopes(x);
        let last = self.layers.len() - 1;
        let jacobian = if self.output_dim() <= self.input_dim() {
            // G = W_Lᵀ, then G ← (G S_l) W_lᵀ for l = L−1 … 0
            let mut g = self.layers[last].weight.t().to_owned();
            for l in (0..last).rev() {
                g *= &slopes[l].view().insert_axis(Axis(0));
                g = g.dot(&self.layers[l].weight.t());
            }
            g
        } else {
            // G = W₀ᵀ, then G ← W_lᵀ (S_{l−1} G) for l = 1 … L
            let mut g = self.layers[0].weight.t().to_owned();
            for l in 1..=last {
                g *= &slopes[l - 1].view().insert_axis(Axis(1));
                g = self.layers[l].weight.t().dot(&g);
            }
            g
        };
        (y, jacobian)
    }

    /// φ(x) and the vector–Jacobian product ∇φ(x)ᵀ w(φ(x)) for a cotangent w that may depend on
    /// the output: one forward and one backward pass (no Jacobian is formed).
    pub fn forward_vjp(
        &self,
        x: ArrayView1<f64>,
        cotangent: impl FnOnce(&Array1<f64>) -> Array1<f64>,
    ) -> (Array1<f64>, Array1<f64>) {
        let (y, slopes) = self.forward_with_slopes(x);
        let last = self.layers.len() - 1;
        let mut g = self.layers[last].weight.dot(&cotangent(&y));
        for l in (0..last).rev() {
            g *= &slopes[l];
            g = self.layers[l].weight.dot(&g);
        }
        (y, g)
    }

    /// The batched [`Self::forward_vjp`]: rows of X are inputs; returns Φ (N × out) and the
    /// rows ∇φ(x_i)ᵀ w_i for the cotangents W = cotangent(Φ). Matrix–matrix products throughout.
    pub fn forward_vjp_batch(
        &self,
        x: &Array2<f64>,
        cotangent: impl FnOnce(&Array2<f64>) -> Array2<f64>,
    ) -> (Array2<f64>, Array2<f64>) {
        let first = &self.layers[0];
        let pre = x.dot(&first.weight) + &first.bias;
        let (y, g) = self.vjp_from_first_preactivation(pre, cotangent);
        (y, g.dot(&first.weight.t()))
    }

    /// φ and the cotangent at the first pre-activation Z₀ = X W₀ + b₀ (rows are samples), for
    /// callers that assemble Z₀ cheaper than X W₀ (e.g. when only part of the input changes).
    pub fn vjp_from_first_preactivation(
        &self,
        pre: Array2<f64>,
        cotangent: impl FnOnce(&Array2<f64>) -> Array2<f64>,
    ) -> (Array2<f64>, Array2<f64>) {
        let last = self.layers.len() - 1;
        if last == 0 {
            let g = cotangent(&pre);
            return (pre, g);
        }
        let mut slopes = Vec::with_capacity(last);
        let (mut h, slope) = activate(&pre);
        slopes.push(slope);
        for layer in &self.layers[1..last] {
            let z = h.dot(&layer.weight) + &layer.bias;
            let (activated, slope) = activate(&z);
            slopes.push(slope);
            h = activated;
        }
        let y = h.dot(&self.layers[last].weight) + &self.layers[last].bias;
        let mut g = cotangent(&y).dot(&self.layers[last].weight.t());
        for l in (1..last).rev() {
            g *= &slopes[l];
            g = g.dot(&self.layers[l].weight.t());
        }
        g *= &slopes[0];
        (y, g)
    }
}
