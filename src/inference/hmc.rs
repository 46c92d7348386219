//! Hamiltonian Monte Carlo in the derivative-informed subspace: the `hmc` kernel and the
//! proposal of `da-hmc`.
//!
//! With the split m − m̄ = V c + m⊥ of [`super::mmala`] (V R-orthonormal, so c ~ N(0, I_r) and
//! m⊥ is independent of c under the prior), the posterior exp(−Φ) × prior restricted to c at a
//! fixed m⊥ has the density exp(−U(c)) on ℝʳ with
//!
//!   U(c) = Φ(m̄ + V c + m⊥) + ½‖c‖²,   ∇U(c) = Vᵀ Jᵀ Γ⁻¹ (q − d) + c.
//!
//! One HMC transition (Duane, Kennedy, Pendleton & Roweth 1987; Neal 2011) draws a momentum
//! p ~ N(0, M), follows H(c, p) = U(c) + ½ pᵀ M⁻¹ p for L leapfrog steps of size ε (ε jittered
//! uniformly by ±10%, independently of the state) and accepts the end point with
//! min(1, exp(H₀ − H₁)); it is reversible for the conditional law of c. The mass matrix is
//! M = I + H₀, H₀ = (J V)ᵀ Γ⁻¹ (J V) the Gauss–Newton Hessian at a fixed centre (the MAP): for
//! the Laplace approximation the flow is then a rotation of period 2π in every direction, so a
//! step ε ~ 0.3 resolves all of them and L ε ~ 2 crosses the posterior. The complement moves by
//! pCN, m⊥' = ρ m⊥ + β ξ⊥ with ξ⊥ = ξ − V Vᵀ R ξ, ξ ~ N(0, C), accepted with
//! min(1, exp(Φ(x) − Φ(y))): reversible for the conditional law of m⊥.
//!
//! A move is K⊥ K_HMCⁿ or K_HMCⁿ K⊥ with probability ½ each: the mixture of a product of
//! reversible kernels and its adjoint is reversible for the posterior it is built on (and costs
//! one complement move where the palindrome K⊥ K_HMCⁿ K⊥ costs two). On the chain's own
//! posterior (PDE or surrogate) this is the `hmc` kernel. On the coarse posterior of
//! `da-subchain` (the surrogate with its fixed affine correction at the MAP) it is the proposal
//! of `da-hmc`, which the PDE corrects once per move (see [`super::mcmc`]).
//!
//! For a reduced-basis surrogate with encoder E the map is evaluated from its coefficients
//! e = Eᵀ(m̄ + m⊥ − m̄_E) + (Eᵀ V) c, the first part fixed while c moves, and ∇_c Φ =
//! (Eᵀ V)ᵀ (∂q/∂e)ᵀ w by one backward pass ([`crate::map::DifferentiableMap::reduced_pullback`]): a
//! leapfrog step then costs O(r_M r) plus the network, nothing of size d_M. Any other map is
//! linearized at m and pulled back with Jᵀ w (one forward and one adjoint solve for the PDE).

use crate::misfit::Misfit;
use std::sync::Arc;

use ndarray::{Array1, Array2, ArrayView1};
use rand::Rng;
use rand_distr::StandardNormal;

use super::mmala::{AffineCorrection, Subspace};
use super::posterior::Posterior;
use crate::error::{Error, Result};
use crate::prior::PriorDraw;

/// Leapfrog steps L, step size ε, and HMC transitions n per move.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HmcSettings {
    pub leapfrog_steps: usize,
    pub leapfrog_size: f64,
    pub transitions: usize,
}

/// HMC on the posterior of `post` (plus an optional fixed affine correction of its map) in the
/// coordinates c of `subspace`, with pCN in the complement.
pub struct SubspaceHmc<'a> {
    post: &'a Posterior<'a>,
    subspace: &'a Subspace,
    correction: Option<&'a AffineCorrection>,
    /// Eᵀ V (r_M × r) when the map has the reduced fast path.
    encoder_product: Option<Array2<f64>>,
    /// M = Q diag(1 + λ) Qᵀ: Q and 1 + λ.
    metric_vectors: Array2<f64>,
    metric_values: Array1<f64>,
    settings: HmcSettings,
}

/// What stays fixed while c moves: m⊥ and what the map needs of it.
#[derive(Debug)]
struct Frozen {
    /// m⊥ = m − m̄ − V c.
    perp: Vec<f64>,
    /// Eᵀ(m̄ + m⊥ − m̄_E) (reduced fast path).
    encoded: Option<Array1<f64>>,
    /// e₀ + ΔJ (m̄ + m⊥ − m₀) (with a correction).
    shift: Option<Array1<f64>>,
}

/// A state (c, m⊥) with the map's output q (corrected, if so), Φ and ∇_c Φ there.
#[derive(Debug, Clone)]
pub struct HmcPoint {
    pub c: Array1<f64>,
    frozen: Arc<Frozen>,
    pub q: Vec<f64>,
    pub phi: f64,
    gradient: Array1<f64>,
}

/// What one move did.
pub struct HmcMove {
    pub end: HmcPoint,
    /// Transitions tried (HMC and complement) and accepted.
    pub transitions: usize,
    pub accepted: usize,
    /// Map evaluations (each with its pullback).
    pub evaluations: usize,
    pub failures: Vec<Error>,
}

/// m = m̄ + V c + m⊥.
fn assemble(subspace: &Subspace, mean: &[f64], c: &Array1<f64>, perp: &[f64]) -> Vec<f64> {
    let vc = subspace.basis.dot(c);
    mean.iter()
        .zip(&vc)
        .zip(perp)
        .map(|((a, b), p)| a + b + p)
        .collect()
}

impl HmcPoint {
    /// m = m̄ + V c + m⊥.
    pub fn parameter(&self, subspace: &Subspace, mean: &[f64]) -> Vec<f64> {
        assemble(subspace, mean, &self.c, &self.frozen.perp)
    }

    /// U = Φ + ½‖c‖².
    fn potential(&self) -> f64 {
        self.phi + 0.5 * self.c.dot(&self.c)
    }
}

impl<'a> SubspaceHmc<'a> {
    /// HMC on `post` (its map corrected by `correction`, if given) with the mass matrix
    /// I + Q diag(λ) Qᵀ of a Gauss–Newton Hessian in the subspace (`hessian_eigen` of a
    /// [`super::mmala::LocalGeometry`] at the centre).
    pub fn new(
        post: &'a Posterior<'a>,
        subspace: &'a Subspace,
        correction: Option<&'a AffineCorrection>,
        hessian_eigen: (&Array1<f64>, &Array2<f64>),
        settings: HmcSettings,
    ) -> Result<Self> {
        if settings.leapfrog_steps == 0 {
            return Err(Error::invalid(
                "command line",
                "--leapfrog-steps",
                "at least one leapfrog step",
                0,
            ));
        }
        if !(settings.leapfrog_size > 0.0 && settings.leapfrog_size.is_finite()) {
            return Err(Error::invalid(
                "command line",
                "--leapfrog-size",
                "a positive step size ε",
                settings.leapfrog_size,
            ));
        }
        // the reduced fast path, where the map has an encoder and answers both of its calls
        let probe = vec![0.0; post.map.input_dim()];
        let fast = post.map.encode(&probe).is_some_and(|e| {
            let d_q = post.map.output_dim();
            post.map
                .reduced_pullback(&e, &mut |_| vec![0.0; d_q])
                .is_some()
        });
        let encoder_product = post
            .map
            .input_encoder()
            .filter(|_| fast)
            .map(|e| e.t().dot(&subspace.basis));
        Ok(SubspaceHmc {
            post,
            subspace,
            correction,
            encoder_product,
            metric_vectors: hessian_eigen.1.clone(),
            metric_values: hessian_eigen.0.mapv(|l| 1.0 + l.max(0.0)),
            settings,
        })
    }

    /// The subspace V.
    pub fn subspace(&self) -> &Subspace {
        self.subspace
    }

    /// The state at m.
    pub fn start(&self, m: &[f64]) -> Result<HmcPoint> {
        let prior = self.post.prior;
        let c = self.subspace.coordinates(prior, m);
        let vc = self.subspace.basis.dot(&c);
        let perp = m
            .iter()
            .zip(prior.mean())
            .zip(&vc)
            .map(|((m, mb), v)| m - mb - v)
            .collect();
        self.evaluate(c, Arc::new(self.freeze(perp)))
    }

    fn freeze(&self, perp: Vec<f64>) -> Frozen {
        let base: Vec<f64> = perp
            .iter()
            .zip(self.post.prior.mean())
            .map(|(p, mb)| p + mb)
            .collect();
        let encoded = self
            .encoder_product
            .as_ref()
            .and_then(|_| self.post.map.encode(&base))
            .map(Array1::from);
        let shift = self.correction.map(|k| k.shift_at(&base));
        Frozen {
            perp,
            encoded,
            shift,
        }
    }

    /// q, Φ and ∇_c Φ at (c, m⊥): with w = Γ⁻¹(q − d), ∇_c Φ = Vᵀ Jᵀ w (+ (ΔJ V)ᵀ w for the
    /// corrected map q + e₀ + ΔJ (m − m₀)).
    fn evaluate(&self, c: Array1<f64>, frozen: Arc<Frozen>) -> Result<HmcPoint> {
        let misfit = &self.post.misfit;
        let shift = match (self.correction, &frozen.shift) {
            (Some(k), Some(s)) => Some(s + &k.slope_in_subspace().dot(&c)),
            _ => None,
        };
        let corrected = |q: &[f64]| -> Vec<f64> {
            match &shift {
                Some(s) => q.iter().zip(s).map(|(a, b)| a + b).collect(),
                None => q.to_vec(),
            }
        };
        let weighted = |q: &[f64]| misfit.weighted_residual(q);
        let (q, w, mut gradient) = match (&self.encoder_product, &frozen.encoded) {
            (Some(b), Some(a)) => {
                let e = a + &b.dot(&c);
                let mut seen = (Vec::new(), Vec::new());
                let (_, g_e) = self
                    .post
                    .map
                    .reduced_pullback(e.as_slice().expect("contiguous"), &mut |q_s| {
                        let q = corrected(q_s);
                        let w = weighted(&q);
                        seen = (q, w.clone());
                        w
                    })
                    .expect("probed in SubspaceHmc::new");
                let gradient = crate::linalg::transpose_mul(b, ArrayView1::from(&g_e));
                (seen.0, seen.1, gradient)
            }
            _ => {
                let m = assemble(self.subspace, self.post.prior.mean(), &c, &frozen.perp);
                let lin = self.post.linearize_map(&m)?;
                let q = corrected(lin.output());
                let w = weighted(&q);
                let jtw = lin.vjp(&w);
                let gradient =
                    crate::linalg::transpose_mul(&self.subspace.basis, ArrayView1::from(&jtw));
                (q, w, gradient)
            }
        };
        if let Some(k) = self.correction {
            gradient += &crate::linalg::transpose_mul(k.slope_in_subspace(), ArrayView1::from(&w));
        }
        let phi = misfit.cost(&q);
        if !phi.is_finite() || gradient.iter().any(|g| !g.is_finite()) {
            return Err(Error::invalid(
                "HMC",
                "misfit",
                "a finite misfit and gradient",
                phi,
            ));
        }
        Ok(HmcPoint {
            c,
            frozen,
            q,
            phi,
            gradient,
        })
    }

    /// Qᵀ ∇U at a point.
    fn force(&self, x: &HmcPoint) -> Array1<f64> {
        self.metric_vectors.t().dot(&(&x.gradient + &x.c))
    }

    /// One HMC transition on c (m⊥ fixed); returns the new state and the evaluations made.
    fn transition(
        &self,
        x: HmcPoint,
        rng: &mut impl Rng,
    ) -> (HmcPoint, bool, usize, Option<Error>) {
        let r = x.c.len();
        // momentum in the eigenbasis of M: p̃ = Qᵀ p = √(1 + λ) ⊙ z, K = ½ Σ p̃²/(1 + λ)
        let z: Array1<f64> = (0..r)
            .map(|_| rng.sample::<f64, _>(StandardNormal))
            .collect();
        let eps = self.settings.leapfrog_size * (0.9 + 0.2 * rng.random::<f64>());
        let u: f64 = rng.random();
        let h0 = x.potential() + 0.5 * z.dot(&z);
        let mut p = &z * &self.metric_values.mapv(f64::sqrt);
        p.scaled_add(-0.5 * eps, &self.force(&x));
        let mut y = x.clone();
        let steps = self.settings.leapfrog_steps;
        for l in 0..steps {
            let velocity = self.metric_vectors.dot(&(&p / &self.metric_values));
            let c = &y.c + &(eps * &velocity);
            y = match self.evaluate(c, y.frozen.clone()) {
                Ok(y) => y,
                Err(e) => return (x, false, l + 1, Some(e)),
            };
            let kick = if l + 1 == steps { 0.5 * eps } else { eps };
            p.scaled_add(-kick, &self.force(&y));
        }
        let kinetic: f64 = p
            .iter()
            .zip(&self.metric_values)
            .map(|(p, m)| 0.5 * p * p / m)
            .sum();
        let h1 = y.potential() + kinetic;
        if h1.is_finite() && u.ln() < h0 - h1 {
            (y, true, steps, None)
        } else {
            (x, false, steps, None)
        }
    }

    /// One pCN move of m⊥ (c fixed) with the prior draw ξ, accepted on Φ.
    fn complement_move(
        &self,
        x: HmcPoint,
        rho: f64,
        draw: &PriorDraw,
        u: f64,
    ) -> (HmcPoint, bool, Option<Error>) {
        let beta = (1.0 - rho * rho).sqrt();
        let zeta = self.subspace.draw_coordinates(draw);
        let v_zeta = self.subspace.basis.dot(&zeta);
        let perp = x
            .frozen
            .perp
            .iter()
            .zip(&draw.deviation)
            .zip(&v_zeta)
            .map(|((p, xi), vz)| rho * p + beta * (xi - vz))
            .collect();
        match self.evaluate(x.c.clone(), Arc::new(self.freeze(perp))) {
            Err(e) => (x, false, Some(e)),
            Ok(y) if u.ln() < x.phi - y.phi => (y, true, None),
            Ok(_) => (x, false, None),
        }
    }

    /// The move K⊥ K_HMCⁿ or K_HMCⁿ K⊥ (each with probability ½) from x, pCN step ρ in the
    /// complement.
    pub fn sweep(&self, x: HmcPoint, rho: f64, rng: &mut impl Rng) -> HmcMove {
        let prior = self.post.prior;
        let mut out = HmcMove {
            end: x,
            transitions: 0,
            accepted: 0,
            evaluations: 0,
            failures: Vec::new(),
        };
        let n = self.settings.transitions;
        let complement_at = if rng.random::<bool>() { 0 } else { n };
        for stage in 0..=n {
            let x = out.end.clone();
            let (y, accepted, evaluations, failure) = if stage == complement_at {
                let draw = prior.draw(rng);
                let (y, a, f) = self.complement_move(x, rho, &draw, rng.random());
                (y, a, 1, f)
            } else {
                self.transition(x, rng)
            };
            out.end = y;
            out.transitions += 1;
            out.accepted += usize::from(accepted);
            out.evaluations += evaluations;
            out.failures.extend(failure);
        }
        out
    }

    /// U(c) and ∇U(c) at fixed m⊥ of a state (for tests).
    pub fn potential_and_gradient(
        &self,
        x: &HmcPoint,
        c: Array1<f64>,
    ) -> Result<(f64, Array1<f64>)> {
        let y = self.evaluate(c, x.frozen.clone())?;
        Ok((y.potential(), &y.gradient + &y.c))
    }
}
