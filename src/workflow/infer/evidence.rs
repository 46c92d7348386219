//! The data an inversion conditions on, and its noise model: synthetic data from a true
//! parameter (d = q(m_true) + η, η ~ N(0, Γ)), measurements from the problem's
//! `[observations] data` CSV, or a vector of values (`--data values.npy`) at the problem's
//! observation points.
//!
//! Γ is σ² I with σ = relative · max |q(m_true)| (synthetic only), a fixed σ² I, diag(σ_k²) of
//! the CSV's `std` column, or the full `[noise] covariance` matrix.

use std::path::{Path, PathBuf};

use rand::Rng;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::inference::synthetic_data;
use crate::io::checksum;
use crate::io::npy::read_vector;
use crate::map::DifferentiableMap;
use crate::misfit::NoiseCovariance;
use crate::problem::{NoiseModel, Problem};
use crate::rng::{stream, Purpose};

use super::InferOptions;

/// Where the data came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum DataSource {
    /// d = q(m_true) + η drawn by dino.
    Synthetic,
    /// Measurements read from a file (the CSV or `--data`), with the checksum of its bytes.
    Observed { file: String, checksum: String },
}

/// The data d, its noise covariance Γ and, for synthetic data, the truth.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub data: Vec<f64>,
    pub noise: NoiseCovariance,
    /// The parameter the synthetic data came from (`None` for observed data).
    pub m_true: Option<Vec<f64>>,
    pub source: DataSource,
}

impl Evidence {
    /// σ where Γ = σ² I.
    pub fn noise_std(&self) -> Option<f64> {
        self.noise.isotropic_variance().map(f64::sqrt)
    }
}

/// The evidence of a run: `opts.data` (a `.npy` of values) or the problem's observed CSV, with
/// the problem's fixed noise model; otherwise synthetic data from `pde` at the true parameter
/// (`opts.true_param` or the prior sample of `opts.true_seed`).
pub fn evidence(
    problem: &Problem,
    pde: &dyn DifferentiableMap,
    opts: &InferOptions,
) -> Result<Evidence> {
    let observed: Option<(Vec<f64>, PathBuf)> = match (&opts.data, problem.observed()) {
        (Some(path), _) => Some((read_vector(path, pde.output_dim(), "--data")?, path.clone())),
        (None, Some(obs)) => Some((obs.values.clone(), obs.file.clone())),
        (None, None) => None,
    };
    if let Some((data, file)) = observed {
        if opts.true_param.is_some() || opts.noise.is_some() {
            return Err(Error::invalid(
                "command line",
                if opts.noise.is_some() { "--noise" } else { "--true-param" },
                "no synthetic-data option with observed data (the noise model is the problem's [noise])",
                "given",
            ));
        }
        let noise = fixed_noise(problem, &file)?;
        if noise.dim().is_some_and(|n| n != data.len()) {
            return Err(Error::invalid(
                problem.path.display().to_string(),
                "noise.covariance",
                format!("a {0} × {0} matrix (one row per datum)", data.len()),
                format!("{0} × {0}", noise.dim().unwrap_or(0)),
            ));
        }
        let checksum = checksum::hex(&std::fs::read(&file).map_err(|e| Error::io(&file, e))?);
        return Ok(Evidence {
            data,
            noise,
            m_true: None,
            source: DataSource::Observed {
                file: file.display().to_string(),
                checksum,
            },
        });
    }
    let prior = problem.prior()?;
    let m_true = match &opts.true_param {
        Some(p) => read_vector(p, prior.dim(), "--true-param")?,
        None => prior.sample(&mut stream(opts.true_seed, Purpose::PriorSample, 1 << 40)),
    };
    let model = match opts.noise {
        Some(relative) => NoiseModel::Relative(relative),
        None => problem.noise_model()?,
    };
    let (data, noise) = match model {
        NoiseModel::Relative(relative) => {
            if !(relative > 0.0 && relative.is_finite()) {
                return Err(Error::invalid(
                    "command line",
                    "--noise",
                    "a positive noise level (σ = noise · max |q|)",
                    relative,
                ));
            }
            let (data, sigma) = synthetic_data(pde, &m_true, relative, opts.seed)?;
            (data, NoiseCovariance::isotropic(sigma * sigma)?)
        }
        NoiseModel::Fixed(noise) => {
            let q = pde.evaluate(&m_true)?;
            let mut rng = stream(opts.seed, Purpose::Noise, 0);
            let xi: Vec<f64> = (0..q.len())
                .map(|_| rng.sample::<f64, _>(rand_distr::StandardNormal))
                .collect();
            if noise.dim().is_some_and(|n| n != q.len()) {
                return Err(Error::invalid(
                    problem.path.display().to_string(),
                    "noise",
                    format!("a noise model of {} data", q.len()),
                    format!("{} data", noise.dim().unwrap_or(0)),
                ));
            }
            let eta = noise.color(&xi);
            let data = q.iter().zip(&eta).map(|(a, b)| a + b).collect();
            (data, noise)
        }
    };
    Ok(Evidence {
        data,
        noise,
        m_true: Some(m_true),
        source: DataSource::Synthetic,
    })
}

/// The problem's noise model for measured data: a relative level needs a truth, so it is refused.
fn fixed_noise(problem: &Problem, data_file: &Path) -> Result<NoiseCovariance> {
    match problem.noise_model()? {
        NoiseModel::Fixed(noise) => Ok(noise),
        NoiseModel::Relative(_) => Err(Error::invalid(
            problem.path.display().to_string(),
            "noise.relative",
            format!(
                "a noise model that does not need a true parameter for the data of {} \
                 ([noise] std = …, covariance = \"C.npy\", or a `std` column)",
                data_file.display()
            ),
            "relative",
        )),
    }
}

/// How well q fits the data d: the residual r = d − q, the whitened residual Γ^{-1/2} r (each
/// entry ~ N(0, 1) at the truth), and χ²/datum = ‖Γ^{-1/2} r‖² / n (≈ 1 for a good fit).
#[derive(Debug, Clone, Serialize)]
pub struct DataFit {
    pub chi2_per_datum: f64,
    pub max_abs_normalized_residual: f64,
    pub rms_residual: f64,
    #[serde(skip)]
    pub residual: Vec<f64>,
    #[serde(skip)]
    pub normalized: Vec<f64>,
}

impl DataFit {
    pub fn new(data: &[f64], q: &[f64], noise: &NoiseCovariance) -> Self {
        let residual: Vec<f64> = data.iter().zip(q).map(|(d, q)| d - q).collect();
        let normalized = noise.whiten(&residual);
        let n = residual.len().max(1) as f64;
        DataFit {
            chi2_per_datum: normalized.iter().map(|z| z * z).sum::<f64>() / n,
            max_abs_normalized_residual: normalized.iter().fold(0.0, |a, z| a.max(z.abs())),
            rms_residual: (residual.iter().map(|r| r * r).sum::<f64>() / n).sqrt(),
            residual,
            normalized,
        }
    }
}
