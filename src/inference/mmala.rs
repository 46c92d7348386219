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
use crate::error::{Error, Result};
use crate::linalg::eigen::try_symmetric_eigen;
use crate::map::Linearization;
use crate::prior::{BiLaplacianPrior, PriorDraw};

/// The fixed R-orthonormal subspace V and, per map, how J V is formed.
pub struct Subspace {
    /// V (d_M × r), Vᵀ R V = I.
    pub basis: Array2<f64>,
    /// M⁻¹ A V (d_M × r): the coordinates of a prior draw A⁻¹ L w are
    /// ζ = Vᵀ R A⁻¹ L w = (M⁻¹ A V)ᵀ L w (A, M symmetric), one dense product per proposal
    /// instead of a mass solve and two stiffness products.
    noise_map: Array2<f64>,
}

/// J V for one map: J_r (Eᵀ V) with Eᵀ V precomputed when the map has an input encoder E,
/// otherwise the full Jacobian times V; optionally of the map plus a fixed
/// [`AffineCorrection`].
pub struct BasisJacobian {
    encoder_product: Option<Array2<f64>>,
    correction: Option<AffineCorrection>,
}

/// A fixed affine correction of a surrogate q_s towards the exact map q, matched at a centre
/// m₀ in value and Jacobian (the surrogate's first-order error at m₀ removed):
///
///   q_C(m) = q_s(m) + e₀ + ΔJ (m − m₀),   e₀ = q(m₀) − q_s(m₀),   ΔJ = J(m₀) − J_s(m₀),
///
/// so J_C V = J_s V + ΔJ V. ΔJ is d_Q × d_M (one full PDE Jacobian); it also corrects the
/// directions a reduced-basis surrogate cannot see (outside its input encoder), where the
/// chain's pCN complement moves. It does not depend on the chain's state, so a chain on q_C
/// is reversible for a fixed target.
#[derive(Debug, Clone)]
pub struct AffineCorrection {
    /// e₀ − ΔJ m₀.
    offset: Array1<f64>,
    /// ΔJ (d_Q × d_M).
    slope: Array2<f64>,
    /// ΔJ V (d_Q × r).
    slope_in_subspace: Array2<f64>,
}

impl AffineCorrection {
    /// The correction of `surrogate` towards `exact` at `centre`: one exact and one surrogate
    /// linearization with full Jacobians.
    pub fn at(
        exact: &Posterior<'_>,
        surrogate: &Posterior<'_>,
        subspace: &Subspace,
        centre: &[f64],
    ) -> Result<Self> {
        let lin_exact = exact.linearize_map(centre)?;
        let lin_surrogate = surrogate.linearize_map(centre)?;
        let slope = lin_exact.jacobian() - lin_surrogate.jacobian();
        let offset = Array1::from_iter(
            lin_exact
                .output()
                .iter()
                .zip(lin_surrogate.output())
                .map(|(q, q_s)| q - q_s),
        ) - slope.dot(&ArrayView1::from(centre));
        let slope_in_subspace = slope.dot(&subspace.basis);
        Ok(AffineCorrection {
            offset,
            slope,
            slope_in_subspace,
        })
    }

    /// e₀ + ΔJ (m − m₀): what the correction adds to the surrogate's output at m.
    pub fn shift_at(&self, m: &[f64]) -> Array1<f64> {
        &self.offset + &self.slope.dot(&ArrayView1::from(m))
    }

    /// ΔJ V (d_Q × r).
    pub fn slope_in_subspace(&self) -> &Array2<f64> {
        &self.slope_in_subspace
    }
}

impl BasisJacobian {
    /// Prepares J V for the map of `post` in the subspace.
    pub fn new(post: &Posterior<'_>, subspace: &Subspace) -> Self {
        BasisJacobian {
            encoder_product: post.map.input_encoder().map(|e| e.t().dot(&subspace.basis)),
            correction: None,
        }
    }

    /// The same, for the map plus `correction`.
    pub fn with_correction(self, correction: AffineCorrection) -> Self {
        BasisJacobian {
            correction: Some(correction),
            ..self
        }
    }

    /// J V (d_Q × r) of the map itself (without the correction) at the linearization point.
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
    /// The map's output q(x) (with the correction, if any).
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
        let mut jv = jacobian.apply(lin.as_ref(), subspace);
        let mut q = lin.output().to_vec();
        if let Some(corr) = &jacobian.correction {
            jv += &corr.slope_in_subspace;
            let shift = corr.shift_at(x);
            q.iter_mut().zip(&shift).for_each(|(q, s)| *q += s);
        }
        let weighted_jacobian_t = post
            .misfit
            .noise()
            .precision_mul_columns(jv.view())
            .t()
            .to_owned();
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
            q,
            c,
            weighted_jacobian_t,
            eigenvalues: eigenvalues.mapv(|l| l.max(0.0)),
            eigenvectors,
        })
    }

    /// λ (decreasing, ≥ 0) and the orthonormal Q of H = (J V)ᵀ Γ⁻¹ (J V) = Q diag(λ) Qᵀ.
    pub fn hessian_eigen(&self) -> (&Array1<f64>, &Array2<f64>) {
        (&self.eigenvalues, &self.eigenvectors)
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
    /// The subspace spanned by the R-orthonormal `basis`, with its noise map M⁻¹ A V (r mass
    /// solves, once).
    pub fn new(prior: &BiLaplacianPrior, basis: Array2<f64>) -> Self {
        let noise_map =
            crate::linalg::eigen::columnwise(&basis, |v| prior.mass_solve(&prior.a_mul(v)));
        Subspace { basis, noise_map }
    }

    /// ζ = Vᵀ R ξ of a prior draw ξ = A⁻¹ L w, from its image L w.
    pub fn draw_coordinates(&self, draw: &PriorDraw) -> Array1<f64> {
        crate::linalg::transpose_mul(&self.noise_map, ArrayView1::from(&draw.image))
    }

    /// c = Vᵀ R (m − m̄).
    pub fn coordinates(&self, prior: &BiLaplacianPrior, m: &[f64]) -> Array1<f64> {
        let d: Vec<f64> = m.iter().zip(prior.mean()).map(|(a, b)| a - b).collect();
        crate::linalg::transpose_mul(&self.basis, Array1::from(prior.precision_mul(&d)).view())
    }

    /// A proposal y = m̄ + V c_y + ρ x⊥ + β ξ⊥ (x⊥ = x − m̄ − V c_x, ξ⊥ = ξ − V ζ) from the
    /// state's geometry and a prior draw ξ ~ N(0, C); returns y and its coordinates c_y.
    pub fn propose(
        &self,
        prior: &BiLaplacianPrior,
        x: &[f64],
        geometry: &LocalGeometry,
        gradient: &Array1<f64>,
        rho: f64,
        draw: &PriorDraw,
    ) -> (Vec<f64>, Array1<f64>) {
        let beta = (1.0 - rho * rho).sqrt();
        let xi = &draw.deviation;
        let zeta = self.draw_coordinates(draw);
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
    use crate::misfit::{GaussianMisfit, Misfit};
    use crate::models::ElementwiseQuadratic;
    use crate::rng::{stream, Purpose};
    use crate::taylor::TaylorTest;

    /// The Poisson problem's prior on an 8 × 8 mesh.
    fn coarse_prior() -> BiLaplacianPrior {
        crate::problem::Problem::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/problems/poisson.toml"
        ))
        .unwrap()
        .with_mesh(8)
        .unwrap()
        .prior()
        .unwrap()
    }

    /// g = (J V)ᵀ Γ⁻¹ (q − d) is the gradient of Φ(m + V δ) in δ (slope-2 Taylor remainder).
    /// ζ from the draw's noise image through M⁻¹ A V equals Vᵀ R ξ computed with solves.
    #[test]
    fn draw_coordinates_need_no_solve() {
        let prior = coarse_prior();
        let n = prior.dim();
        let subspace = Subspace::new(
            &prior,
            Array2::from_shape_fn((n, 3), |(i, j)| ((i * 3 + j * 7) as f64 * 0.23).sin()),
        );
        let draw = prior.draw(&mut stream(9, Purpose::Chain, 0));
        let fast = subspace.draw_coordinates(&draw);
        let rv = prior.precision_mul(&draw.deviation);
        let slow = crate::linalg::transpose_mul(&subspace.basis, ArrayView1::from(&rv));
        let err = (&fast - &slow)
            .mapv(f64::abs)
            .fold(0.0f64, |a, &b| a.max(b));
        let scale = slow.mapv(f64::abs).fold(0.0f64, |a, &b| a.max(b));
        assert!(scale > 1e-3 && err < 1e-10 * scale, "{fast} vs {slow}");
    }

    #[test]
    fn subspace_gradient_passes_the_taylor_test() {
        let prior = coarse_prior();
        let n = prior.dim();
        let map = ElementwiseQuadratic {
            b: Array2::from_shape_fn((4, n), |(i, j)| 0.3 * ((i * 5 + j * 2) as f64 * 0.41).cos()),
            a: 0.5,
        };
        let misfit = GaussianMisfit::new(vec![0.2, -0.1, 0.4, 0.0], 0.01).unwrap();
        let post = Posterior::new(&map, &prior, misfit.clone()).unwrap();
        let subspace = Subspace::new(
            &prior,
            Array2::from_shape_fn((n, 3), |(i, j)| ((i * 3 + j * 7) as f64 * 0.23).sin()),
        );
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

    /// The corrected surrogate q_C = q_s + e₀ + ΔJ (m − m₀) matches the exact map at m₀ in value
    /// and J V, so their difference grows like ε² along any direction (not ε, as the raw
    /// surrogate's does), and the geometry's gradient is the exact one at m₀.
    #[test]
    fn affine_correction_matches_the_exact_map_to_first_order_at_the_centre() {
        let prior = coarse_prior();
        let n = prior.dim();
        let b = Array2::from_shape_fn((4, n), |(i, j)| 0.3 * ((i * 5 + j * 2) as f64 * 0.41).cos());
        let exact = ElementwiseQuadratic {
            b: b.clone(),
            a: 0.5,
        };
        let surrogate = ElementwiseQuadratic {
            b: &b * 0.8,
            a: 0.1,
        };
        let misfit = GaussianMisfit::new(vec![0.2, -0.1, 0.4, 0.0], 0.01).unwrap();
        let exact_post = Posterior::new(&exact, &prior, misfit.clone()).unwrap();
        let surrogate_post = Posterior::new(&surrogate, &prior, misfit.clone()).unwrap();
        let subspace = Subspace::new(
            &prior,
            Array2::from_shape_fn((n, 3), |(i, j)| ((i * 3 + j * 7) as f64 * 0.23).sin()),
        );
        let centre = prior.sample(&mut stream(5, Purpose::PriorSample, 0));
        let correction =
            AffineCorrection::at(&exact_post, &surrogate_post, &subspace, &centre).unwrap();
        let corrected = BasisJacobian::new(&surrogate_post, &subspace).with_correction(correction);
        let at = |m: &[f64], jac: &BasisJacobian, post: &Posterior<'_>| {
            let c = subspace.coordinates(&prior, m);
            LocalGeometry::at(post, jac, &subspace, m, c).unwrap()
        };
        let exact_jac = BasisJacobian::new(&exact_post, &subspace);
        let (g_exact, g_corrected) = (
            at(&centre, &exact_jac, &exact_post),
            at(&centre, &corrected, &surrogate_post),
        );
        let gradient = |g: &LocalGeometry| g.gradient(&g.q, misfit.data());
        let gap = &gradient(&g_exact) - &gradient(&g_corrected);
        assert!(gap
            .iter()
            .all(|v| v.abs() < 1e-9 * gradient(&g_exact).dot(&gradient(&g_exact)).sqrt()));
        let direction = prior.sample(&mut stream(6, Purpose::PriorSample, 0));
        let error = |eps: f64| {
            let m: Vec<f64> = centre
                .iter()
                .zip(&direction)
                .zip(prior.mean())
                .map(|((c, d), mb)| c + eps * (d - mb))
                .collect();
            let (q, q_c) = (
                exact.evaluate(&m).unwrap(),
                at(&m, &corrected, &surrogate_post).q,
            );
            q.iter()
                .zip(&q_c)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        let (e1, e2) = (error(0.1), error(0.05));
        assert!(
            e1 > 1e-6,
            "the surrogate differs from the exact map away from m₀"
        );
        let slope = (e1 / e2).log2();
        assert!(
            (slope - 2.0).abs() < 0.1,
            "q − q_C shrinks like ε^{slope:.2}, expected ε²"
        );
    }
}
