//! Optimization under uncertainty (OUU): choose a control z ∈ [l, u]^{n_z} minimizing a risk
//! measure of Q(z, m) over the uncertain parameter m ~ prior, by sample average approximation.
//!
//! - [`qoi`]: the per-sample quantity of interest Q(z, m_i) and ∇_z Q ([`ControlQoi`]), with the
//!   PDE or a multi-input surrogate behind it;
//! - [`risk`]: mean, mean + β·variance, CVaR_α (Rockafellar–Uryasev, smoothed plus function);
//! - [`saa`]: the sample-average objective in (z, t) and its gradient;
//! - [`bounded_lbfgs`]: projected L-BFGS for the box constraints (L-BFGS-B semantics);
//! - [`solve`]: one SAA optimization from z₀, and statistics of Q at a control.

pub mod bounded_lbfgs;
pub mod qoi;
pub mod risk;
pub mod saa;
pub mod solve;
mod surrogate;

pub use bounded_lbfgs::{
    minimize_bounded, BoundedIteration, BoundedLbfgsSettings, BoundedResult, BoundedStop,
};
pub use qoi::{ControlQoi, SampledQoi};
pub use risk::{sample_cvar, sample_quantile, RiskMeasure, SmoothPlus};
pub use saa::{SaaEvaluation, SaaObjective, SampleFailure};
pub use solve::{solve_ouu, OuuSettings, OuuSolution, QoiStatistics};
