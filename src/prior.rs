//! BiLaplacian Gaussian prior (hIPPYlib's `BiLaplacianPrior`).
//!
//! A = γ K_Θ + δ M (+ β M_∂, β = γ √(δ/γ) / 1.42, a Robin term that damps boundary artefacts),
//! with K_Θ the stiffness matrix of the anisotropic tensor Θ and M the P1 mass matrix.
//! Covariance C = A⁻¹ M A⁻¹, precision R = C⁻¹ = A M⁻¹ A. Samples m = m̄ + A⁻¹ L ξ with
//! ξ ~ N(0, I) and L Lᵀ = M exactly: L is assembled from the Cholesky factors of the element mass
//! matrices, M = Σ_T P_T (L_T L_Tᵀ) P_Tᵀ, so the white noise has one entry per (triangle, vertex).
//!
//! Inner products: m is a nodal vector; `precision_mul` and `gradient` return dual vectors
//! (R m, in the ℓ² pairing with nodal vectors); `covariance_mul` maps a dual vector to a nodal one.

use rand::Rng;
use rand_distr::StandardNormal;

use crate::error::{Error, Result};
use crate::fem::assembly::{add_boundary_mass, assemble_mass, assemble_stiffness};
use crate::fem::{CholeskyFactor, DofMap, Mesh, SparsePattern};

/// Parameters of the BiLaplacian prior.
#[derive(Debug, Clone, PartialEq)]
pub struct BiLaplacianParams {
    /// γ > 0: weight of the (anisotropic) Laplacian.
    pub gamma: f64,
    /// δ > 0: weight of the mass term.
    pub delta: f64,
    /// (θ0, θ1, α) of the anisotropic tensor Θ, or `None` for Θ = I.
    pub anisotropy: Option<(f64, f64, f64)>,
    /// Add the Robin boundary term β M_∂.
    pub robin: bool,
    /// The mean m̄: a constant or a nodal field.
    pub mean: Mean,
}

/// Prior mean.
#[derive(Debug, Clone, PartialEq)]
pub enum Mean {
    /// m̄ = c everywhere.
    Constant(f64),
    /// A nodal field.
    Field(Vec<f64>),
}

/// Θ(θ0, θ1, α) = [[θ0 sin²α + θ1 cos²α, (θ0 − θ1) sin α cos α], [·, θ0 cos²α + θ1 sin²α]].
pub fn anisotropic_tensor(theta0: f64, theta1: f64, alpha: f64) -> [[f64; 2]; 2] {
    let (s, c) = alpha.sin_cos();
    let off = (theta0 - theta1) * s * c;
    [
        [theta0 * s * s + theta1 * c * c, off],
        [off, theta0 * c * c + theta1 * s * s],
    ]
}

/// The BiLaplacian prior N(m̄, C) on P1 fields of a mesh.
#[derive(Debug, Clone)]
pub struct BiLaplacianPrior {
    params: BiLaplacianParams,
    mean: Vec<f64>,
    pattern: SparsePattern,
    a_values: Vec<f64>,
    m_values: Vec<f64>,
    a_factor: CholeskyFactor,
    m_factor: CholeskyFactor,
    triangles: Vec<[usize; 3]>,
    /// √|T| for each triangle: L_T = √|T| L_ref.
    sqrt_area: Vec<f64>,
}

/// Lower Cholesky factor of the reference element mass (1 + δ_ab)/12 (for |T| = 1).
fn reference_mass_sqrt() -> [[f64; 3]; 3] {
    let m = [
        [2.0 / 12.0, 1.0 / 12.0, 1.0 / 12.0],
        [1.0 / 12.0, 2.0 / 12.0, 1.0 / 12.0],
        [1.0 / 12.0, 1.0 / 12.0, 2.0 / 12.0],
    ];
    let mut l = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..=i {
            let s: f64 = m[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>();
            l[i][j] = if i == j { s.sqrt() } else { s / l[j][j] };
        }
    }
    l
}

/// A zero-mean prior draw ξ = A⁻¹ L w ~ N(0, C) and its noise image L w (w white noise).
#[derive(Debug, Clone)]
pub struct PriorDraw {
    pub deviation: Vec<f64>,
    pub image: Vec<f64>,
}

impl BiLaplacianPrior {
    /// The prior on `mesh`. γ and δ must be positive; a field mean must have one value per vertex.
    pub fn new(mesh: &Mesh, params: BiLaplacianParams) -> Result<Self> {
        for (name, v) in [("gamma", params.gamma), ("delta", params.delta)] {
            if !(v > 0.0 && v.is_finite()) {
                return Err(Error::invalid("prior", name, "a positive finite number", v));
            }
        }
        let nv = mesh.num_vertices();
        let mean = match &params.mean {
            Mean::Constant(c) => vec![*c; nv],
            Mean::Field(f) => {
                crate::error::check_finite_vector(f, nv, "prior", "mean")?;
                f.clone()
            }
        };
        let theta = match params.anisotropy {
            Some((t0, t1, a)) => anisotropic_tensor(t0, t1, a),
            None => [[1.0, 0.0], [0.0, 1.0]],
        };
        let pattern = SparsePattern::new(mesh, &DofMap::all(nv));
        let m_values = assemble_mass(mesh, &pattern);
        let k_values = assemble_stiffness(mesh, &pattern, theta);
        let mut a_values: Vec<f64> = k_values
            .iter()
            .zip(&m_values)
            .map(|(k, m)| params.gamma * k + params.delta * m)
            .collect();
        if params.robin {
            let beta = params.gamma * (params.delta / params.gamma).sqrt() / 1.42;
            add_boundary_mass(mesh, &pattern, mesh.boundary_edges(), beta, &mut a_values);
        }
        let symbolic = pattern.symbolic_cholesky_for_solves();
        let a_factor = CholeskyFactor::new(&symbolic, &pattern, &a_values, "prior operator A")?;
        let m_factor = CholeskyFactor::new(&symbolic, &pattern, &m_values, "mass matrix M")?;
        Ok(BiLaplacianPrior {
            params,
            mean,
            pattern,
            a_values,
            m_values,
            a_factor,
            m_factor,
            triangles: mesh.triangles().to_vec(),
            sqrt_area: mesh.geometry().iter().map(|g| g.area.sqrt()).collect(),
        })
    }

    /// The parameters the prior was built from.
    pub fn params(&self) -> &BiLaplacianParams {
        &self.params
    }

    /// d_M, the number of nodal values.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Dimension of the white noise ξ: 3 per triangle.
    pub fn noise_dim(&self) -> usize {
        3 * self.triangles.len()
    }

    /// The mean m̄.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// A x
    pub fn a_mul(&self, x: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0; x.len()];
        self.pattern.mul(&self.a_values, x, &mut y);
        y
    }

    /// M x
    pub fn mass_mul(&self, x: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0; x.len()];
        self.pattern.mul(&self.m_values, x, &mut y);
        y
    }

    /// M⁻¹ b
    pub fn mass_solve(&self, b: &[f64]) -> Vec<f64> {
        self.m_factor.solve(b)
    }

    /// A⁻¹ b
    pub fn a_solve(&self, b: &[f64]) -> Vec<f64> {
        self.a_factor.solve(b)
    }

    /// C b = A⁻¹ M A⁻¹ b (dual → nodal).
    pub fn covariance_mul(&self, b: &[f64]) -> Vec<f64> {
        self.a_solve(&self.mass_mul(&self.a_solve(b)))
    }

    /// R x = A M⁻¹ A x (nodal → dual).
    pub fn precision_mul(&self, x: &[f64]) -> Vec<f64> {
        self.a_mul(&self.mass_solve(&self.a_mul(x)))
    }

    /// L ξ with L Lᵀ = M, for white noise ξ of length [`Self::noise_dim`].
    pub fn mass_sqrt_mul(&self, xi: &[f64]) -> Vec<f64> {
        assert_eq!(
            xi.len(),
            self.noise_dim(),
            "white noise has the wrong length"
        );
        let l = reference_mass_sqrt();
        let mut out = vec![0.0; self.dim()];
        for (t, tri) in self.triangles.iter().enumerate() {
            let x = &xi[3 * t..3 * t + 3];
            for a in 0..3 {
                let la: f64 = (0..=a).map(|b| l[a][b] * x[b]).sum();
                out[tri[a]] += self.sqrt_area[t] * la;
            }
        }
        out
    }

    /// The sample m̄ + A⁻¹ L ξ for white noise ξ.
    pub fn sample_from_noise(&self, xi: &[f64]) -> Vec<f64> {
        let mut m = self.a_solve(&self.mass_sqrt_mul(xi));
        for (mi, mbar) in m.iter_mut().zip(&self.mean) {
            *mi += mbar;
        }
        m
    }

    /// A sample m ~ N(m̄, C) drawn with `rng`.
    pub fn sample(&self, rng: &mut impl Rng) -> Vec<f64> {
        let xi = self.white_noise(rng);
        self.sample_from_noise(&xi)
    }

    /// A zero-mean draw A⁻¹ L ξ ~ N(0, C) with `rng` (the same draw as [`Self::sample`] minus
    /// m̄).
    pub fn sample_deviation(&self, rng: &mut impl Rng) -> Vec<f64> {
        self.draw(rng).deviation
    }

    /// The draw of [`Self::sample_deviation`] with its noise image L ξ, through which
    /// R (A⁻¹ L ξ) = A M⁻¹ L ξ: coordinates Vᵀ R of the draw cost a dense product with the
    /// precomputed M⁻¹ A V, no solve.
    pub fn draw(&self, rng: &mut impl Rng) -> PriorDraw {
        let xi = self.white_noise(rng);
        let image = self.mass_sqrt_mul(&xi);
        PriorDraw {
            deviation: self.a_solve(&image),
            image,
        }
    }

    fn white_noise(&self, rng: &mut impl Rng) -> Vec<f64> {
        (0..self.noise_dim())
            .map(|_| rng.sample(StandardNormal))
            .collect()
    }

    /// ½ ‖m − m̄‖²_R
    pub fn cost(&self, m: &[f64]) -> f64 {
        let d = self.deviation(m);
        let a_d = self.a_mul(&d);
        0.5 * a_d
            .iter()
            .zip(&self.mass_solve(&a_d))
            .map(|(x, y)| x * y)
            .sum::<f64>()
    }

    /// R (m − m̄), the gradient of [`Self::cost`] (a dual vector).
    pub fn gradient(&self, m: &[f64]) -> Vec<f64> {
        self.precision_mul(&self.deviation(m))
    }

    fn deviation(&self, m: &[f64]) -> Vec<f64> {
        m.iter().zip(&self.mean).map(|(a, b)| a - b).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mass_square_root_reproduces_the_mass_matrix() {
        let mesh = Mesh::unit_square(3);
        let prior = BiLaplacianPrior::new(
            &mesh,
            BiLaplacianParams {
                gamma: 0.1,
                delta: 0.5,
                anisotropy: Some((2.0, 0.5, 0.7)),
                robin: true,
                mean: Mean::Constant(0.0),
            },
        )
        .unwrap();
        // xᵀ M y == (Lᵀ x)ᵀ (Lᵀ y): check x^T L L^T y via L applied to unit noise vectors.
        let n = prior.dim();
        let x: Vec<f64> = (0..n).map(|i| (i as f64).sin()).collect();
        let y: Vec<f64> = (0..n).map(|i| (i as f64 * 0.3).cos()).collect();
        let lt = |v: &[f64]| -> Vec<f64> {
            (0..prior.noise_dim())
                .map(|k| {
                    let mut e = vec![0.0; prior.noise_dim()];
                    e[k] = 1.0;
                    prior
                        .mass_sqrt_mul(&e)
                        .iter()
                        .zip(v)
                        .map(|(a, b)| a * b)
                        .sum()
                })
                .collect()
        };
        let lhs: f64 = x.iter().zip(&prior.mass_mul(&y)).map(|(a, b)| a * b).sum();
        let rhs: f64 = lt(&x).iter().zip(&lt(&y)).map(|(a, b)| a * b).sum();
        assert!(
            (lhs - rhs).abs() < 1e-14 * lhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
    }

    #[test]
    fn non_positive_gamma_is_an_error() {
        let mesh = Mesh::unit_square(2);
        let params = BiLaplacianParams {
            gamma: 0.0,
            delta: 1.0,
            anisotropy: None,
            robin: false,
            mean: Mean::Constant(0.0),
        };
        let err = BiLaplacianPrior::new(&mesh, params)
            .unwrap_err()
            .to_string();
        assert!(err.contains("gamma"), "{err}");
    }
}
