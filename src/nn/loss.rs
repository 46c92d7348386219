//! Training losses (paper eq. 3.5, as its code computes them): per-sample *relative* squared
//! errors averaged over the batch,
//!   L2 term  = mean_i ‖q_i − f(m_i)‖² / ‖q_i‖²,
//!   Jacobian = mean_i ‖J_i − ∇f(m_i)‖²_F / ‖J_i‖²_F,
//! and the H1 loss is their weighted sum. Norms are Euclidean / Frobenius in whatever coordinates
//! the tensors hold (full, or reduced bases for DIPNet, where the Jacobian term costs O(r_Q r_M)).

use burn::tensor::Tensor;

/// mean_i ‖pred_i − target_i‖² / ‖target_i‖² over the rows of [B, n] tensors.
pub fn relative_l2(pred: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    let err = (pred - target.clone()).powi_scalar(2).sum_dim(1);
    let norm = target.powi_scalar(2).sum_dim(1);
    (err / norm).mean()
}

/// mean_i ‖pred_i − target_i‖²_F / ‖target_i‖²_F over [B, n, m] tensors.
pub fn relative_frobenius(pred: Tensor<3>, target: Tensor<3>) -> Tensor<1> {
    let [b, _, _] = target.dims();
    let err = (pred - target.clone())
        .powi_scalar(2)
        .reshape([b as i64, -1])
        .sum_dim(1);
    let norm = target.powi_scalar(2).reshape([b as i64, -1]).sum_dim(1);
    (err / norm).mean()
}

/// Which terms a loss has and their weights.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LossWeights {
    /// Weight of the L2 term.
    pub l2: f64,
    /// Weight of the Jacobian term (0: plain L2 training).
    pub jacobian: f64,
}

impl LossWeights {
    /// L2 only.
    pub const L2: LossWeights = LossWeights {
        l2: 1.0,
        jacobian: 0.0,
    };
    /// H1 with the default 1:1 weighting.
    pub const H1: LossWeights = LossWeights {
        l2: 1.0,
        jacobian: 1.0,
    };
}
