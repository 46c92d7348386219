//! The multilayer perceptron φ of the reduced-basis networks, with its input Jacobian.
//!
//! φ(x) = W_L h_{L} + b_L,  h_{l+1} = softplus(W_l h_l + b_l),  h_0 = x  (burn's row convention:
//! a layer maps a batch row h to h W + b, W of shape [in, out]).
//!
//! burn's autodiff is first order only, so the input Jacobian is propagated forward as ordinary
//! tensor ops, batched with the rows of J indexing input directions:
//!   J_{z_l} = J_{h_l} W_l  ([B, r_in, w_l] = [B, r_in, w_{l−1}] × [1, w_{l−1}, w_l]),
//!   J_{h_{l+1}} = J_{z_l} ⊙ σ(z_l)  (softplus' = sigmoid, broadcast over the r_in axis),
//! starting from J_{z_0} = W_0 expanded over the batch. Autodiff then differentiates any loss of
//! (φ, ∇φ) with respect to the weights through these ops.

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{activation, Device, Tensor, TensorData};

/// Input directions of a directional-derivative pass.
pub enum Directions {
    /// One set per sample, [B, k, input].
    PerSample(Tensor<3>),
    /// One set for the whole batch, [k, input].
    Shared(Tensor<2>),
}

/// Sizes of an MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MlpShape {
    pub input: usize,
    pub width: usize,
    /// Hidden layers.
    pub depth: usize,
    pub output: usize,
}

/// φ: ℝ^input → ℝ^output with `depth` softplus layers of `width`.
#[derive(Module, Debug)]
pub struct Mlp {
    hidden: Vec<Linear>,
    output: Linear,
}

/// burn's initializers draw from the backend's global generator: one thread's seeding and
/// drawing must not interleave with another's (parallel trainings, parallel tests), or a seed
/// would not determine the weights.
fn lock_initializers() -> std::sync::MutexGuard<'static, ()> {
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    INIT.lock().unwrap_or_else(|e| e.into_inner())
}

impl Mlp {
    /// Random initialization (burn's default, seeded by `seed`).
    pub fn new(shape: MlpShape, seed: u64, device: &Device) -> Self {
        let _guard = lock_initializers();
        device.seed(seed);
        let mut d = shape.input;
        let hidden = (0..shape.depth)
            .map(|_| {
                let layer = LinearConfig::new(d, shape.width).init(device);
                d = shape.width;
                layer
            })
            .collect();
        Mlp {
            hidden,
            output: LinearConfig::new(d, shape.output).init(device),
        }
    }

    /// An MLP with given weights: `layers[l] = (W row-major [in, out], b [out], in, out)`.
    pub fn from_weights(layers: &[(Vec<f32>, Vec<f32>, usize, usize)], device: &Device) -> Self {
        // the placeholder layers draw from the generator too
        let _guard = lock_initializers();
        let linear = |(w, b, i, o): &(Vec<f32>, Vec<f32>, usize, usize)| {
            let mut layer = LinearConfig::new(*i, *o).init(device);
            layer.weight = Param::from_tensor(Tensor::from_data(
                TensorData::new(w.clone(), [*i, *o]),
                device,
            ));
            layer.bias = Some(Param::from_tensor(Tensor::from_data(
                TensorData::new(b.clone(), [*o]),
                device,
            )));
            layer
        };
        let (last, hidden) = layers.split_last().expect("at least the output layer");
        Mlp {
            hidden: hidden.iter().map(linear).collect(),
            output: linear(last),
        }
    }

    /// The weights as `(W, b, in, out)` per layer (inverse of [`Mlp::from_weights`]).
    pub fn weights(&self) -> Vec<(Vec<f32>, Vec<f32>, usize, usize)> {
        self.hidden
            .iter()
            .chain(std::iter::once(&self.output))
            .map(|l| {
                let w = l.weight.val();
                let [i, o] = w.dims();
                let b = l.bias.as_ref().expect("layers have biases").val();
                (
                    w.into_data().try_to_vec::<f32>().expect("f32 weights"),
                    b.into_data().try_to_vec::<f32>().expect("f32 biases"),
                    i,
                    o,
                )
            })
            .collect()
    }

    /// ∂loss/∂(W, b) per layer from the result of `loss.backward()` (same layout as [`Mlp::weights`]).
    pub fn gradients(&self, grads: &burn::tensor::Gradients) -> Vec<(Vec<f32>, Vec<f32>)> {
        let read = |t: Option<Tensor<2>>| {
            t.map(|t| t.into_data().try_to_vec::<f32>().expect("f32"))
                .unwrap_or_default()
        };
        self.hidden
            .iter()
            .chain(std::iter::once(&self.output))
            .map(|l| {
                let gw = read(l.weight.val().grad(grads));
                let gb = l
                    .bias
                    .as_ref()
                    .and_then(|b| b.val().grad(grads))
                    .map(|t| t.into_data().try_to_vec::<f32>().expect("f32"))
                    .unwrap_or_default();
                (gw, gb)
            })
            .collect()
    }

    /// φ(x) for a batch x [B, input].
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let h = self
            .hidden
            .iter()
            .fold(x, |h, layer| activation::softplus(layer.forward(h), 1.0));
        self.output.forward(h)
    }

    /// φ(x) [B, output] and its input Jacobian ∇φ(x) [B, output, input].
    pub fn forward_with_jacobian(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<3>) {
        self.forward_with_directions(x, None)
    }

    /// φ(x) [B, output] and the directional derivatives ∇φ(x) Dᵀ [B, output, k] along the
    /// directions D (rows of D are directions: [B, k, input] per sample, or [k, input] shared by
    /// the batch); `None` means D = I (the full input Jacobian).
    ///
    /// The derivative rows of the whole batch are stacked into one [B·k, width] matrix so that
    /// each layer's J_h W is a single large matrix product. For the full Jacobian of a network
    /// whose input is wider than its first layer (the generic network on d_M = 4225 inputs),
    /// forward mode starts at the first pre-activation instead: ∇φ = ∇_{z₀}φ · W₀ᵀ, so the
    /// propagated block has width₀ rows per sample instead of `input`.
    pub fn forward_with_directions(
        &self,
        x: Tensor<2>,
        directions: Option<Directions>,
    ) -> (Tensor<2>, Tensor<3>) {
        let [batch, input] = x.dims();
        let device = x.device();
        let layers: Vec<&Linear> = self
            .hidden
            .iter()
            .chain(std::iter::once(&self.output))
            .collect();
        let w0 = layers[0].weight.val();
        let width0 = w0.dims()[1];
        let expand = |m: Tensor<2>| {
            let [i, o] = m.dims();
            m.unsqueeze_dim::<3>(0)
                .expand([batch as i64, i as i64, o as i64])
                .reshape([(batch * i) as i64, o as i64])
        };
        // J_{z₀} for the k propagated directions, [B·k, width₀]; `tail` = W₀ when the
        // propagation starts at z₀ and ∇φ still has to be multiplied by W₀ᵀ.
        let (k, mut jz, tail) = match directions {
            Some(Directions::PerSample(d)) => {
                let k = d.dims()[1];
                let d = d.reshape([(batch * k) as i64, input as i64]);
                (k, d.matmul(w0), None)
            }
            // the same directions for every sample: D W₀ once, expanded over the batch
            Some(Directions::Shared(d)) => (d.dims()[0], expand(d.matmul(w0)), None),
            None if input > width0 => (width0, expand(Tensor::<2>::eye(width0, &device)), Some(w0)),
            None => (input, expand(w0), None),
        };
        let rows = (batch * k) as i64;
        let mut h = x;
        let last = layers.len() - 1;
        for (l, layer) in layers.iter().enumerate() {
            let z = layer.forward(h);
            if l > 0 {
                jz = jz.matmul(layer.weight.val());
            }
            if l == last {
                h = z;
                break;
            }
            let width = z.dims()[1];
            let slope = activation::sigmoid(z.clone()).unsqueeze_dim::<3>(1); // [B, 1, width]
            jz = (jz.reshape([batch as i64, k as i64, width as i64]) * slope)
                .reshape([rows, width as i64]);
            h = activation::softplus(z, 1.0);
        }
        let out = h.dims()[1];
        let jy = jz
            .reshape([batch as i64, k as i64, out as i64])
            .swap_dims(1, 2); // [B, out, k]
        let jy = match tail {
            Some(w0) => jy
                .reshape([(batch * out) as i64, k as i64])
                .matmul(w0.transpose())
                .reshape([batch as i64, out as i64, input as i64]),
            None => jy,
        };
        (h, jy)
    }
}
