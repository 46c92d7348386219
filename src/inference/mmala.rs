//! Subspace manifold MALA (DIS-mMALA; Beskos, Girolami, Lan, Farrell & Stuart 2017, in the
//! reduced form of Cao, O'Leary-Roseberry & Ghattas 2024): a Langevin proposal with the map's
//! *local* Gauss–Newton geometry in a fixed derivative-informed subspace, and pCN in its
//! complement.
//!
//! Let V (d_M × r) be R-orthonormal (Vᵀ R V = I, e.g. the Laplace eigenvectors at the MAP) and
//! split m − m̄ = V c + m⊥ with c = Vᵀ R (m − m̄). Under the prior c ~ N(0, I_r) and m⊥ is
//! independent of c. At a state x the map gives, in the subspace,
//!
//!   g = (J V)ᵀ Γ⁻¹ (q − d)   (the misfit gradient in c),
//!   H = (J V)ᵀ Γ⁻¹ (J V) = Q diag(λ) Qᵀ   (the Gauss–Newton Hessian in c),
//!
//! and the proposal is (ρ = √(1 − β²))
//!
//!   c' = μ(x) + Σ(x)^{1/2} ζ,   μ(x) = ρ c + (1 − ρ)(I + H)⁻¹(H c − g),
//!   Σ(x) = (1 − ρ²)(I + H)⁻¹,   m⊥' = ρ m⊥ + β ξ⊥,
//!
//! with ξ ~ N(0, C), ζ = Vᵀ R ξ and ξ⊥ = ξ − V ζ. On a linear–Gaussian problem whose informed
//! directions lie in span V this is gpCN around the exact posterior and accepts every proposal.
//! The pCN part is reversible with respect to the prior of m⊥, so the Metropolis–Hastings
//! log-ratio of a move x → y of a target exp(−Φ) × prior is Φ(x) − Φ(y) + G(x, y) with
//!
//!   G(x, y) = ½‖c_x‖² − ½‖c_y‖² + log q(c_x | y) − log q(c_y | x),
//!   log q(c' | x) = −½ (c' − μ(x))ᵀ Σ(x)⁻¹ (c' − μ(x)) − ½ log det Σ(x).
//!
//! J V costs one full Jacobian for the PDE (r ≥ d_Q) and, for a reduced-basis surrogate whose
//! input encoder is E, J_r (Eᵀ V) with Eᵀ V formed once.

use ndarray::{Array1, Array2, ArrayView1};

use super::posterior::Posterior;
use crate::bases::eigensolver::try_symmetric_eigen;
use crate::error::{Error, Result};
use crate::map::Linearization;
use crate::prior::BiLaplacianPrior;

/// The fixed R-orthonormal subspace V and, per map, how J V is formed.
pub struct Subspace {
    /// V (d_M × r), Vᵀ R V = I.
    pub basis: Array2<f64>,
}

/// J V for one map: J_r (Eᵀ V) with Eᵀ V precomputed when the map has an input encoder E,
/// otherwise the full Jacobian times V.
pub struct BasisJacobian {
    encoder_product: Option<Array2<f64>>,
}

impl BasisJacobian {
    /// Prepares J V for the map of `post` in the subspace.
    pub fn new(post: &Posterior<'_>, subspace: &Subspace) -> Self {
        BasisJacobian {
            encoder_product: post.map.input_encoder().map(|e| e.t().dot(&subspace.basis)),
        }
    }

    /// J V (d_Q × r) at the linearization point.
    pub fn apply(&self, lin: &dyn Linearization, subspace: &Subspace) -> Array2<f64> {
        match (&self.encoder_product, lin.reduced_jacobian()) {
            (Some(p), Some(jr)) => jr.dot(p),
            _ => lin.jacobian().dot(&subspace.basis),
        }
    }
}

/// The map's local geometry at one state, in the subspace coordinates.
#[derive(Debug, Clone)]
pub struct LocalGeometry {
    /// The map's output q(x).
    pub q: Vec<f64>,
    /// c = Vᵀ R (x − m̄).
    pub c: Array1<f64>,
    /// (J V)ᵀ Γ⁻¹ (r × d_Q).
    weighted_jacobian_t: Array2<f64>,
    /// λ (decreasing, clipped at 0) and Q of H = (J V)ᵀ Γ⁻¹ (J V).
    eigenvalues: Array1<f64>,
    eigenvectors: Array2<f64>,
}

impl LocalGeometry {
    /// Evaluates the map of `post` at x (one map evaluation with derivatives) and forms J V and
    /// the eigen-decomposition of H.
    pub fn at(
        post: &Posterior<'_>,
        jacobian: &BasisJacobian,
        subspace: &Subspace,
        x: &[f64],
        c: Array1<f64>,
    ) -> Result<Self> {
        let lin = post.linearize_map(x)?;
        let jv = jacobian.apply(lin.as_ref(), subspace);
        let weighted_jacobian_t = jv.t().to_owned() / post.misfit.noise_variance();
        let (eigenvalues, eigenvectors) = try_symmetric_eigen(&weighted_jacobian_t.dot(&jv))
            .ok_or_else(|| {
                Error::invalid(
                    "mMALA",
                    "local Gauss–Newton Hessian",
                    "a finite matrix",
                    "non-finite entries (the map's Jacobian is not finite here)",
                )
            })?;
        Ok(LocalGeometry {
            q: lin.output().to_vec(),
            c,
            weighted_jacobian_t,
            eigenvalues: eigenvalues.mapv(|l| l.max(0.0)),
            eigenvectors,
        })
    }

    /// g = (J V)ᵀ Γ⁻¹ (q − d) for an output q (the map's own, or a better estimate of it, such
    /// as the PDE's output at this state when the geometry is a surrogate's).
    pub fn gradient(&self, q: &[f64], data: &[f64]) -> Array1<f64> {
        let residual: Array1<f64> = q.iter().zip(data).map(|(a, b)| a - b).collect();
        self.weighted_jacobian_t.dot(&residual)
    }

    /// μ(x) = ρ c + (1 − ρ)(I + H)⁻¹(H c − g), in the eigenbasis:
    /// Q [(λ + ρ)/(1 + λ) Qᵀc − (1 − ρ)/(1 + λ) Qᵀg].
    fn proposal_mean(&self, rho: f64, gradient: &Array1<f64>) -> Array1<f64> {
        let qc = self.eigenvectors.t().dot(&self.c);
        let qg = self.eigenvectors.t().dot(gradient);
        let coef = Array1::from_shape_fn(qc.len(), |i| {
            let l = self.eigenvalues[i];
            ((l + rho) * qc[i] - (1.0 - rho) * qg[i]) / (1.0 + l)
        });
        self.eigenvectors.dot(&coef)
    }

    /// c' = μ(x) + Σ(x)^{1/2} ζ with Σ^{1/2} = √(1 − ρ²) Q diag((1 + λ)^{−1/2}) Qᵀ.
    pub fn propose(&self, rho: f64, gradient: &Array1<f64>, zeta: ArrayView1<f64>) -> Array1<f64> {
        let qz = self.eigenvectors.t().dot(&zeta);
        let s = (1.0 - rho * rho).sqrt();
        let scaled =
            Array1::from_shape_fn(qz.len(), |i| s * qz[i] / (1.0 + self.eigenvalues[i]).sqrt());
        self.proposal_mean(rho, gradient) + self.eigenvectors.dot(&scaled)
    }

    /// log q(c' | x) up to a constant that does not depend on x:
    /// −½ (c' − μ)ᵀ Σ⁻¹ (c' − μ) + ½ Σ_i log(1 + λ_i), Σ⁻¹ = Q diag((1 + λ)/(1 − ρ²)) Qᵀ.
    pub fn log_proposal_density(&self, rho: f64, gradient: &Array1<f64>, to: &Array1<f64>) -> f64 {
        let diff = to - &self.proposal_mean(rho, gradient);
        let qd = self.eigenvectors.t().dot(&diff);
        let s2 = 1.0 - rho * rho;
        let quad: f64 = qd
            .iter()
            .zip(&self.eigenvalues)
            .map(|(d, l)| d * d * (1.0 + l) / s2)
            .sum();
        let logdet: f64 = self.eigenvalues.iter().map(|l| (1.0 + l).ln()).sum();
        -0.5 * quad + 0.5 * logdet
    }
}

/// G(x, y) = ½‖c_x‖² − ½‖c_y‖² + log q(c_x | y) − log q(c_y | x): the part of the
/// Metropolis–Hastings log-ratio of x → y besides Φ(x) − Φ(y), for the drift gradients g_x, g_y
/// at either end.
pub fn log_reference_ratio(
    x: &LocalGeometry,
    g_x: &Array1<f64>,
    y: &LocalGeometry,
    g_y: &Array1<f64>,
    rho: f64,
) -> f64 {
    0.5 * x.c.dot(&x.c) - 0.5 * y.c.dot(&y.c) + y.log_proposal_density(rho, g_y, &x.c)
        - x.log_proposal_density(rho, g_x, &y.c)
}

impl Subspace {
    /// c = Vᵀ R (m − m̄).
    pub fn coordinates(&self, prior: &BiLaplacianPrior, m: &[f64]) -> Array1<f64> {
        let d: Vec<f64> = m.iter().zip(prior.mean()).map(|(a, b)| a - b).collect();
        crate::linalg::transpose_mul(&self.basis, Array1::from(prior.precision_mul(&d)).view())
    }

    /// A proposal y = m̄ + V c_y + ρ x⊥ + β ξ⊥ (x⊥ = x − m̄ − V c_x, ξ⊥ = ξ − V ζ) from the
    /// state's geometry and a prior deviation ξ ~ N(0, C); returns y and its coordinates c_y.
    pub fn propose(
        &self,
        prior: &BiLaplacianPrior,
        x: &[f64],
        geometry: &LocalGeometry,
        gradient: &Array1<f64>,
        rho: f64,
        xi: &[f64],
    ) -> (Vec<f64>, Array1<f64>) {
        let beta = (1.0 - rho * rho).sqrt();
        let zeta =
            crate::linalg::transpose_mul(&self.basis, Array1::from(prior.precision_mul(xi)).view());
        let c_y = geometry.propose(rho, gradient, zeta.view());
        // y − m̄ = ρ (x − m̄) + β ξ + V (c_y − ρ c_x − β ζ)
        let shift = self
            .basis
            .dot(&(&c_y - &(rho * &geometry.c) - &(beta * &zeta)));
        let y = x
            .iter()
            .zip(prior.mean())
            .zip(xi)
            .zip(&shift)
            .map(|(((x, mb), xi), s)| mb + rho * (x - mb) + beta * xi + s)
            .collect();
        (y, c_y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::DifferentiableMap;
    use crate::misfit::GaussianMisfit;
    use crate::models::ElementwiseQuadratic;
    use crate::rng::{stream, Purpose};
    use crate::taylor::TaylorTest;

    /// g = (J V)ᵀ Γ⁻¹ (q − d) is the gradient of Φ(m + V δ) in δ (slope-2 Taylor remainder).
    #[test]
    fn subspace_gradient_passes_the_taylor_test() {
        let problem = crate::problem::Problem::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/problems/poisson.toml"
        ))
        .unwrap()
        .with_mesh(8)
        .unwrap();
        let prior = problem.prior().unwrap();
        let n = prior.dim();
        let map = ElementwiseQuadratic {
            b: Array2::from_shape_fn((4, n), |(i, j)| 0.3 * ((i * 5 + j * 2) as f64 * 0.41).cos()),
            a: 0.5,
        };
        let misfit = GaussianMisfit::new(vec![0.2, -0.1, 0.4, 0.0], 0.01).unwrap();
        let post = Posterior::new(&map, &prior, misfit.clone()).unwrap();
        let subspace = Subspace {
            basis: Array2::from_shape_fn((n, 3), |(i, j)| ((i * 3 + j * 7) as f64 * 0.23).sin()),
        };
        let jacobian = BasisJacobian::new(&post, &subspace);
        let m = prior.sample(&mut stream(5, Purpose::PriorSample, 0));
        let c = subspace.coordinates(&prior, &m);
        let local = LocalGeometry::at(&post, &jacobian, &subspace, &m, c).unwrap();
        let g = local.gradient(&local.q, misfit.data());
        let delta = Array1::from(vec![0.7, -0.4, 0.9]);
        let direction = subspace.basis.dot(&delta);
        let phi = |e: f64| {
            let x: Vec<f64> = m.iter().zip(&direction).map(|(a, b)| a + e * b).collect();
            misfit.cost(&map.evaluate(&x).unwrap())
        };
        TaylorTest::run_scalar(phi, phi(0.0), g.dot(&delta), 1e-1, 6)
            .assert_second_order("subspace misfit gradient", 0.1);
    }
}
