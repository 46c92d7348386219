//! Bayesian inversion on a differentiable map (the PDE or a surrogate): the posterior, the MAP
//! point by Newton–CG, the Laplace approximation, MCMC kernels and their diagnostics.

pub mod diagnostics;
pub mod hmc;
pub mod laplace;
pub mod lbfgs;
pub mod mcmc;
pub mod mmala;
pub mod newton_cg;
pub mod posterior;

pub use laplace::Laplace;
pub use mcmc::{KernelKind, McmcSettings};
pub use newton_cg::{map_newton_cg, MapResult, NewtonCgSettings};
pub use posterior::{synthetic_data, Posterior};
