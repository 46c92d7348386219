//! The low-rank Laplace approximation of a posterior as a Gaussian measure
//! N(m_MAP, Γ_post), Γ_post = (R + H_misfit)⁻¹ ≈ C − V diag(λ/(1+λ)) Vᵀ,
//! where (λ_i, v_i) are dominant eigenpairs of H_misfit v = λ R v with Vᵀ R V = I (computed by
//! `crate::inference::laplace`, [`Laplace::at`]); this module holds the type, its sampling and its
//! saved folder.
//!
//! Samples: x = m_MAP + (I − V diag(1 − 1/√(1+λ)) Vᵀ R) s with s ~ N(0, C), whose covariance is
//! exactly C − V diag(λ/(1+λ)) Vᵀ. Pointwise variance: diag(C) − Σ_i λ_i/(1+λ_i) v_i².
//! Precision of the low-rank model: Γ_post⁻¹ = R + R V diag(λ) Vᵀ R.

use std::path::Path;

use ndarray::{Array1, Array2};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use super::GaussianMeasure;
use crate::error::{Error, Result};
use crate::io::npy::{read_matrix, read_vector, write_matrix, write_vector};
use crate::prior::BiLaplacianPrior;

/// Format tag of a saved Laplace approximation.
pub const LAPLACE_FORMAT: &str = "dino-laplace-1";

/// `laplace.json` of a saved Laplace approximation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaplaceRecord {
    pub format: String,
    /// Hash of the problem file the approximation belongs to.
    pub problem_hash: String,
    /// d_M and the rank r.
    pub dim: usize,
    pub rank: usize,
    /// Checksum of mean, eigenvalues and vectors (what a data set drawn from it records).
    pub checksum: String,
}

/// The low-rank Laplace approximation.
#[derive(Debug, Clone)]
pub struct Laplace {
    pub mean: Vec<f64>,
    /// λ_i, decreasing.
    pub eigenvalues: Array1<f64>,
    /// V (d_M × r), R-orthonormal.
    pub vectors: Array2<f64>,
}

impl Laplace {
    /// Checksum of the mean, the eigenvalues and the vectors.
    pub fn checksum(&self) -> String {
        let bytes: Vec<u8> = self
            .mean
            .iter()
            .chain(self.eigenvalues.iter())
            .chain(self.vectors.iter())
            .flat_map(|v| v.to_le_bytes())
            .collect();
        crate::io::checksum::hex(&bytes)
    }

    /// Writes `dir/{mean,eigenvalues,vectors}.npy` and `dir/laplace.json` (each atomically).
    pub fn save(&self, dir: &Path, problem_hash: &str) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        write_vector(dir.join("mean.npy"), &self.mean)?;
        write_vector(dir.join("eigenvalues.npy"), &self.eigenvalues.to_vec())?;
        write_matrix(dir.join("vectors.npy"), &self.vectors)?;
        let record = LaplaceRecord {
            format: LAPLACE_FORMAT.into(),
            problem_hash: problem_hash.into(),
            dim: self.mean.len(),
            rank: self.eigenvalues.len(),
            checksum: self.checksum(),
        };
        let text = serde_json::to_string_pretty(&record).expect("serializable");
        crate::io::write_atomic(dir.join("laplace.json"), |w| w.write_all(text.as_bytes()))
    }

    /// Reads a folder written by [`Laplace::save`], refusing one made for another problem
    /// (hash), of another dimension, or whose arrays do not match its record.
    pub fn load(dir: &Path, problem_hash: &str, dim: usize) -> Result<Laplace> {
        let json = dir.join("laplace.json");
        let text = std::fs::read_to_string(&json).map_err(|e| Error::io(&json, e))?;
        let record: LaplaceRecord = serde_json::from_str(&text).map_err(|e| {
            Error::parse(
                &json,
                format!("not a Laplace approximation written by `dino infer`: {e}"),
            )
        })?;
        let name = json.display().to_string();
        if record.format != LAPLACE_FORMAT {
            return Err(Error::invalid(
                &name,
                "format",
                LAPLACE_FORMAT,
                record.format,
            ));
        }
        if record.problem_hash != problem_hash {
            return Err(Error::invalid(
                &name,
                "problem_hash",
                format!("{problem_hash} (the problem file given on the command line)"),
                record.problem_hash,
            ));
        }
        if record.dim != dim {
            return Err(Error::invalid(&name, "dim", dim.to_string(), record.dim));
        }
        let mean = read_vector(dir.join("mean.npy"), dim, "mean")?;
        let eigenvalues = Array1::from(read_vector(
            dir.join("eigenvalues.npy"),
            record.rank,
            "eigenvalues",
        )?);
        let vectors = read_matrix(dir.join("vectors.npy"), dim, "vectors")?;
        if vectors.ncols() != record.rank {
            return Err(Error::invalid(
                dir.join("vectors.npy").display().to_string(),
                "shape",
                format!("({dim}, {})", record.rank),
                format!("({dim}, {})", vectors.ncols()),
            ));
        }
        if eigenvalues.iter().any(|l| !(l.is_finite() && *l >= 0.0)) {
            return Err(Error::invalid(
                dir.join("eigenvalues.npy").display().to_string(),
                "eigenvalues",
                "finite, non-negative values",
                "a negative or non-finite value",
            ));
        }
        let laplace = Laplace {
            mean,
            eigenvalues,
            vectors,
        };
        if laplace.checksum() != record.checksum {
            return Err(Error::invalid(
                &name,
                "checksum",
                record.checksum,
                format!("{} (the arrays were changed)", laplace.checksum()),
            ));
        }
        Ok(laplace)
    }

    /// The Laplace approximation of the posterior with the noise variance inflated `tau` times:
    /// N(m_MAP, (R + H/τ)⁻¹), eigenvalues λ_i/τ. Wider than the posterior by √τ in the
    /// informed directions (λ_i ≫ τ), the prior where λ_i ≪ τ.
    pub fn tempered(&self, tau: f64) -> Laplace {
        Laplace {
            mean: self.mean.clone(),
            eigenvalues: self.eigenvalues.mapv(|l| l / tau),
            vectors: self.vectors.clone(),
        }
    }

    /// Coefficients Vᵀ R x.
    pub fn coefficients(&self, prior: &BiLaplacianPrior, x: &[f64]) -> Array1<f64> {
        crate::linalg::transpose_mul(&self.vectors, Array1::from(prior.precision_mul(x)).view())
    }

    /// (I − V diag(1 − 1/√(1+λ)) Vᵀ R) s: maps an N(0, C) sample to an N(0, Γ_post) one.
    pub fn transform_prior_sample(&self, prior: &BiLaplacianPrior, s: &[f64]) -> Vec<f64> {
        let c = self.coefficients(prior, s);
        let scaled = Array1::from_shape_fn(c.len(), |i| {
            c[i] * (1.0 - 1.0 / (1.0 + self.eigenvalues[i]).sqrt())
        });
        let shift = self.vectors.dot(&scaled);
        s.iter().zip(shift.iter()).map(|(a, b)| a - b).collect()
    }

    /// A zero-mean N(0, Γ_post) draw.
    pub fn sample_deviation(&self, prior: &BiLaplacianPrior, rng: &mut impl Rng) -> Vec<f64> {
        self.transform_prior_sample(prior, &prior.sample_deviation(rng))
    }

    /// A sample of N(m_MAP, Γ_post).
    pub fn sample(&self, prior: &BiLaplacianPrior, rng: &mut impl Rng) -> Vec<f64> {
        let d = self.sample_deviation(prior, rng);
        d.iter().zip(&self.mean).map(|(a, b)| a + b).collect()
    }

    /// Pointwise posterior variance diag(C) − Σ λ_i/(1+λ_i) v_i² (given diag(C)).
    pub fn pointwise_variance(&self, prior_variance: &[f64]) -> Vec<f64> {
        let mut var = prior_variance.to_vec();
        for (i, &l) in self.eigenvalues.iter().enumerate() {
            let w = l / (1.0 + l);
            for (k, v) in var.iter_mut().enumerate() {
                *v -= w * self.vectors[[k, i]].powi(2);
            }
        }
        var
    }
}

/// A [`Laplace`] approximation with the prior it refines: the measure N(m_MAP, Γ_post).
#[derive(Debug, Clone, Copy)]
pub struct LaplaceMeasure<'a> {
    pub laplace: &'a Laplace,
    pub prior: &'a BiLaplacianPrior,
}

impl Laplace {
    /// This approximation as a [`GaussianMeasure`], with the prior C it is a low-rank update of.
    pub fn measure<'a>(&'a self, prior: &'a BiLaplacianPrior) -> LaplaceMeasure<'a> {
        LaplaceMeasure {
            laplace: self,
            prior,
        }
    }
}

impl GaussianMeasure for LaplaceMeasure<'_> {
    fn dim(&self) -> usize {
        self.laplace.mean.len()
    }

    fn mean(&self) -> &[f64] {
        &self.laplace.mean
    }

    fn sample(&self, mut rng: &mut dyn RngCore) -> Vec<f64> {
        self.laplace.sample(self.prior, &mut rng)
    }

    /// Γ_post b = C b − V diag(λ/(1+λ)) Vᵀ b.
    fn covariance_mul(&self, b: &[f64]) -> Vec<f64> {
        let l = self.laplace;
        let c = crate::linalg::transpose_mul(&l.vectors, ndarray::ArrayView1::from(b));
        let scaled = Array1::from_shape_fn(c.len(), |i| {
            c[i] * l.eigenvalues[i] / (1.0 + l.eigenvalues[i])
        });
        let shift = l.vectors.dot(&scaled);
        let cb = self.prior.covariance_mul(b);
        cb.iter().zip(shift.iter()).map(|(a, s)| a - s).collect()
    }

    /// Γ_post⁻¹ x = R x + R V diag(λ) Vᵀ R x.
    fn precision_mul(&self, x: &[f64]) -> Option<Vec<f64>> {
        let l = self.laplace;
        let rx = self.prior.precision_mul(x);
        let c = crate::linalg::transpose_mul(&l.vectors, ndarray::ArrayView1::from(&rx[..]));
        let scaled = Array1::from_shape_fn(c.len(), |i| c[i] * l.eigenvalues[i]);
        let update = self.prior.precision_mul(&l.vectors.dot(&scaled).to_vec());
        Some(rx.iter().zip(&update).map(|(a, u)| a + u).collect())
    }

    fn pointwise_variance(&self) -> Vec<f64> {
        self.laplace
            .pointwise_variance(&super::prior_pointwise_variance(self.prior))
    }
}
