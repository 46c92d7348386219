//! Training losses (paper eq. 3.5, as its code computes them): per-sample *relative* squared
//! errors averaged over the batch,
//!   L2 term  = mean_i ‖q_i − f(m_i)‖² / ‖q_i‖²,
//!   Jacobian = mean_i ‖J_i − ∇f(m_i)‖²_F / ‖J_i‖²_F            (full H1),
//!            = mean_i ‖Σ_i − U_iᵀ ∇f(m_i) V_i‖²_F / ‖Σ_i‖²_F   (reduced H1, Prop. 2.1: J_i ≈ U_i Σ_i V_iᵀ
//!              the rank-r truncated SVD of each sample's Jacobian),
//!            = the same on a random k × k diagonal block (matrix subsampling "MS", Prop. 2.2 with
//!              dependent row and column samples, redrawn every epoch),
//! and the loss is w_L2 · L2 + w_J · Jacobian. Norms are Euclidean / Frobenius in whatever
//! coordinates the tensors hold (full, or reduced bases for DIPNet, where the Jacobian term costs
//! O(r_Q r_M), Prop. 2.4).

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

/// The Jacobian term of a loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum JacobianTerm {
    /// No Jacobian term: L2 training.
    None,
    /// ‖J − ∇f‖²_F / ‖J‖²_F.
    Full,
    /// ‖Σ_r − U_rᵀ ∇f V_r‖²_F / ‖Σ_r‖²_F with each sample's rank-r SVD.
    ReducedSvd { rank: usize },
    /// The reduced-SVD term on a random `block` × `block` diagonal block of Σ_r.
    Subsampled { rank: usize, block: usize },
}

impl JacobianTerm {
    /// Rank of the per-sample SVD the term needs, if any.
    pub fn svd_rank(self) -> Option<usize> {
        match self {
            JacobianTerm::ReducedSvd { rank } | JacobianTerm::Subsampled { rank, .. } => Some(rank),
            _ => None,
        }
    }

    /// Short name (as the CLI spells it).
    pub fn name(self) -> &'static str {
        match self {
            JacobianTerm::None => "l2",
            JacobianTerm::Full => "h1",
            JacobianTerm::ReducedSvd { .. } => "reduced-h1",
            JacobianTerm::Subsampled { .. } => "ms",
        }
    }
}

/// A loss: which Jacobian term, and the weights of the two terms.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Loss {
    pub jacobian: JacobianTerm,
    /// Weight of the L2 term.
    pub l2_weight: f64,
    /// Weight of the Jacobian term.
    pub jacobian_weight: f64,
}

impl Loss {
    /// L2 only.
    pub const L2: Loss = Loss {
        jacobian: JacobianTerm::None,
        l2_weight: 1.0,
        jacobian_weight: 0.0,
    };
    /// Full H1 with the default 1:1 weighting.
    pub const H1: Loss = Loss {
        jacobian: JacobianTerm::Full,
        l2_weight: 1.0,
        jacobian_weight: 1.0,
    };

    /// A loss with the given Jacobian term, weights 1:1.
    pub fn with_term(jacobian: JacobianTerm) -> Loss {
        Loss {
            jacobian,
            l2_weight: 1.0,
            jacobian_weight: if jacobian == JacobianTerm::None {
                0.0
            } else {
                1.0
            },
        }
    }

    /// True when training needs derivative data.
    pub fn uses_jacobian(&self) -> bool {
        self.jacobian != JacobianTerm::None && self.jacobian_weight != 0.0
    }
}
