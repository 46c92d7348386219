//! Reduced bases for the input (parameter) and output (observable) spaces.
//!
//! | kind | eigenproblem | orthonormal in | encoder (c = encoderᵀ (x − shift)) |
//! | --- | --- | --- | --- |
//! | `active-subspace` | E[Jᵀ Γ⁻¹ J] v = λ R v (paper eq. 2.24, prior-preconditioned) | R = C⁻¹ (prior precision) | R V |
//! | `kle` | (M C M) v = λ M v (prior covariance, Karhunen–Loève) | M (L²) | M V |
//! | `pod` | E[(q − q̄)(q − q̄)ᵀ] u = λ u (shifted by the mean q̄) | ℓ² | U |
//! | `jjt` | E[J Jᵀ] u = λ u (paper eq. 2.25, derivative outer product) | ℓ² | U |
//!
//! The decoder V (or U) maps coefficients back: x ≈ shift + V c; encode ∘ decode is the identity.
//! Γ = σ² I with σ = `noise.relative` · E[‖q‖_∞] over the samples used.
//! Files in a basis folder: `decoder.npy`, `encoder.npy` (d × r, float64), `eigenvalues.npy`,
//! `shift.npy` (POD), `basis.json` (kind, inner product, problem), `eigenvalues.svg`.

use std::path::Path;

use ndarray::{Array1, Array2, Array3, Axis};
use ndarray_npy::{read_npy, WriteNpyExt};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{Dataset, JacobianKind};
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::linalg::eigen::{columnwise, double_pass_generalized, symmetric_eigen};
use crate::map::{DifferentiableMap, Linearization};
use crate::misfit::NoiseCovariance;
use crate::prior::BiLaplacianPrior;
use crate::problem::NoiseModel;
use crate::report::svg::{semilogy, Series};
use crate::rng::{stream, Purpose};

/// The kinds of basis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BasisKind {
    ActiveSubspace,
    Kle,
    Pod,
    Jjt,
}

impl BasisKind {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BasisKind::ActiveSubspace => "active-subspace",
            BasisKind::Kle => "kle",
            BasisKind::Pod => "pod",
            BasisKind::Jjt => "jjt",
        }
    }

    fn inner_product(self) -> &'static str {
        match self {
            BasisKind::ActiveSubspace => "R (prior precision): Vᵀ R V = I",
            BasisKind::Kle => "M (mass, L²): Vᵀ M V = I",
            BasisKind::Pod | BasisKind::Jjt => "ℓ²: Uᵀ U = I",
        }
    }
}

/// Metadata saved with a basis.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BasisInfo {
    pub kind: BasisKind,
    pub rank: usize,
    /// Dimension of the space (d_M or d_Q).
    pub dim: usize,
    pub inner_product: String,
    pub problem_hash: String,
    /// Samples the basis was computed from (0 for the prior-only KLE).
    pub samples: usize,
    /// σ of Γ = σ² I (active subspace).
    pub noise_std: Option<f64>,
}

impl BasisInfo {
    /// Metadata of a basis of `kind` (its inner product follows from the kind).
    pub fn new(
        kind: BasisKind,
        rank: usize,
        dim: usize,
        problem_hash: &str,
        samples: usize,
        noise_std: Option<f64>,
    ) -> Self {
        BasisInfo {
            kind,
            rank,
            dim,
            inner_product: kind.inner_product().into(),
            problem_hash: problem_hash.into(),
            samples,
            noise_std,
        }
    }
}

/// A reduced basis: decoder, encoder, eigenvalues, optional shift.
#[derive(Debug, Clone)]
pub struct Basis {
    pub info: BasisInfo,
    pub eigenvalues: Array1<f64>,
    pub decoder: Array2<f64>,
    pub encoder: Array2<f64>,
    pub shift: Option<Array1<f64>>,
}

impl Basis {
    /// c = encoderᵀ (x − shift)
    pub fn encode(&self, x: &[f64]) -> Array1<f64> {
        let mut x = Array1::from(x.to_vec());
        if let Some(s) = &self.shift {
            x -= s;
        }
        self.encoder.t().dot(&x)
    }

    /// x = shift + decoder c
    pub fn decode(&self, c: &[f64]) -> Array1<f64> {
        let mut x = self.decoder.dot(&Array1::from(c.to_vec()));
        if let Some(s) = &self.shift {
            x += s;
        }
        x
    }

    /// Writes the basis files into `dir` (atomically, each file).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let npy2 = |name: &str, a: &Array2<f64>| {
            write_atomic(dir.join(name), |w| {
                a.write_npy(w).map_err(std::io::Error::other)
            })
        };
        npy2("decoder.npy", &self.decoder)?;
        npy2("encoder.npy", &self.encoder)?;
        write_atomic(dir.join("eigenvalues.npy"), |w| {
            self.eigenvalues.write_npy(w).map_err(std::io::Error::other)
        })?;
        if let Some(s) = &self.shift {
            write_atomic(dir.join("shift.npy"), |w| {
                s.write_npy(w).map_err(std::io::Error::other)
            })?;
        }
        let json = serde_json::to_string_pretty(&self.info).expect("serializable");
        write_atomic(dir.join("basis.json"), |w| w.write_all(json.as_bytes()))?;
        let values = self.eigenvalues.to_vec();
        let svg = semilogy(
            &format!(
                "{} eigenvalues ({} samples)",
                self.info.kind.name(),
                self.info.samples
            ),
            "index",
            "eigenvalue",
            &[Series {
                name: "λ_i",
                values: &values,
            }],
        );
        write_atomic(dir.join("eigenvalues.svg"), |w| w.write_all(svg.as_bytes()))
    }

    /// Reads a basis folder, checking that the files agree with each other.
    pub fn load(dir: &Path) -> Result<Self> {
        let meta = dir.join("basis.json");
        let text = std::fs::read_to_string(&meta).map_err(|e| Error::io(&meta, e))?;
        let info: BasisInfo = serde_json::from_str(&text)
            .map_err(|e| Error::parse(&meta, format!("invalid basis description: {e}")))?;
        let read2 = |name: &str| -> Result<Array2<f64>> {
            let path = dir.join(name);
            let a: Array2<f64> = read_npy(&path)
                .map_err(|e| Error::parse(&path, format!("expected a 2-D float64 array: {e}")))?;
            if a.shape() != [info.dim, info.rank] {
                return Err(Error::invalid(
                    path.display().to_string(),
                    name,
                    format!("shape ({}, {}) as in basis.json", info.dim, info.rank),
                    format!("{:?}", a.shape()),
                ));
            }
            Ok(a)
        };
        let path = dir.join("eigenvalues.npy");
        let eigenvalues: Array1<f64> = read_npy(&path)
            .map_err(|e| Error::parse(&path, format!("expected a 1-D float64 array: {e}")))?;
        let shift = match dir.join("shift.npy") {
            p if p.exists() => Some(
                read_npy(&p)
                    .map_err(|e| Error::parse(&p, format!("expected a 1-D float64 array: {e}")))?,
            ),
            _ => None,
        };
        Ok(Basis {
            decoder: read2("decoder.npy")?,
            encoder: read2("encoder.npy")?,
            eigenvalues,
            shift,
            info,
        })
    }
}

/// Size and randomness of a randomized eigen-solve.
#[derive(Debug, Clone, Copy)]
pub struct EigenSettings {
    /// Basis vectors wanted.
    pub rank: usize,
    /// Extra random vectors.
    pub oversampling: usize,
    /// Seed of the random test matrix (and of pilot samples).
    pub seed: u64,
}

fn check_rank(rank: usize, limit: usize, what: &str) -> Result<()> {
    if rank == 0 || rank > limit {
        return Err(Error::invalid(
            "command line",
            "--rank",
            format!("a rank between 1 and {limit} ({what})"),
            rank,
        ));
    }
    Ok(())
}

/// The noise of an active subspace: σ where Γ = σ² I (for a relative level,
/// σ = relative · E[‖q‖_∞] over `outputs`), else the full or diagonal Γ.
fn noise_of<'n, 'a>(
    noise: &'n NoiseModel,
    outputs: impl Iterator<Item = &'a [f64]>,
) -> (Option<f64>, Option<&'n NoiseCovariance>) {
    match noise {
        NoiseModel::Relative(r) => (Some(noise_std(outputs, *r)), None),
        NoiseModel::Fixed(g) => match g.isotropic_variance() {
            Some(v) => (Some(v.sqrt()), None),
            None => (None, Some(g)),
        },
    }
}

/// σ = relative · E[‖q‖_∞].
fn noise_std<'a>(outputs: impl Iterator<Item = &'a [f64]>, relative: f64) -> f64 {
    let (sum, n) = outputs.fold((0.0, 0usize), |(s, n), q| {
        (s + q.iter().fold(0.0f64, |m, x| m.max(x.abs())), n + 1)
    });
    relative * sum / n.max(1) as f64
}

/// The dominant eigenpairs of A v = λ B v as a basis: decoder V (B-orthonormal, Vᵀ B V = I),
/// encoder B V (so encoderᵀ decoder = I). `ops` = [A, B, B⁻¹].
fn generalized_basis(
    ops: [crate::linalg::eigen::BlockOp<'_>; 3],
    settings: EigenSettings,
    info: BasisInfo,
) -> Result<Basis> {
    let [a, b, binv] = ops;
    check_rank(settings.rank, info.dim, "the parameter dimension")?;
    let mut rng = stream(settings.seed, Purpose::Sketch, 0);
    let pairs = double_pass_generalized(
        info.dim,
        a,
        b,
        binv,
        settings.rank,
        settings.oversampling,
        &mut rng,
    );
    // an operator of lower rank than asked for gives fewer eigenpairs
    let info = BasisInfo {
        rank: pairs.vectors.ncols(),
        ..info
    };
    Ok(Basis {
        info,
        eigenvalues: pairs.values,
        encoder: b(&pairs.vectors),
        decoder: pairs.vectors,
        shift: None,
    })
}

/// The Karhunen–Loève basis of the prior: (M C M) v = λ M v.
pub fn kle(prior: &BiLaplacianPrior, settings: EigenSettings, problem_hash: &str) -> Result<Basis> {
    let a = |x: &Array2<f64>| {
        columnwise(x, |v| {
            prior.mass_mul(&prior.covariance_mul(&prior.mass_mul(v)))
        })
    };
    let b = |x: &Array2<f64>| columnwise(x, |v| prior.mass_mul(v));
    let binv = |x: &Array2<f64>| columnwise(x, |v| prior.mass_solve(v));
    let info = BasisInfo::new(
        BasisKind::Kle,
        settings.rank,
        prior.dim(),
        problem_hash,
        0,
        None,
    );
    generalized_basis([&a, &b, &binv], settings, info)
}

/// Prior-preconditioned active subspace H v = λ R v for H X = (1/N) Σ Jᵢᵀ Γ⁻¹ Jᵢ X
/// (B = R, B⁻¹ = C), from `samples` samples; `sigma`: σ where Γ = σ² I.
fn active_subspace(
    prior: &BiLaplacianPrior,
    h: crate::linalg::eigen::BlockOp<'_>,
    settings: EigenSettings,
    samples: usize,
    sigma: Option<f64>,
    problem_hash: &str,
) -> Result<Basis> {
    let r = |x: &Array2<f64>| columnwise(x, |v| prior.precision_mul(v));
    let c = |x: &Array2<f64>| columnwise(x, |v| prior.covariance_mul(v));
    let info = BasisInfo::new(
        BasisKind::ActiveSubspace,
        settings.rank,
        prior.dim(),
        problem_hash,
        samples,
        sigma,
    );
    generalized_basis([h, &r, &c], settings, info)
}

/// Active subspace from `pilot` PDE (or surrogate) linearizations at prior samples (seed, i).
pub fn active_subspace_from_map(
    map: &dyn DifferentiableMap,
    prior: &BiLaplacianPrior,
    pilot: usize,
    noise: &NoiseModel,
    settings: EigenSettings,
    problem_hash: &str,
) -> Result<Basis> {
    let seed = settings.seed;
    if pilot == 0 {
        return Err(Error::invalid(
            "command line",
            "--pilot",
            "a positive number of samples",
            0,
        ));
    }
    let progress = indicatif::ProgressBar::new(pilot as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "linearizing pilot samples [{bar:30}] {pos}/{len}, ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let lins: Vec<Box<dyn Linearization + '_>> = (0..pilot)
        .into_par_iter()
        .map(|i| {
            let lin =
                map.linearize(&prior.sample(&mut stream(seed, Purpose::PriorSample, i as u64)));
            progress.inc(1);
            lin
        })
        .collect::<Result<_>>()?;
    progress.finish_and_clear();
    let (sigma, gamma) = noise_of(noise, lins.iter().map(|l| l.output()));
    let scale = 1.0 / (sigma.map_or(1.0, |s| s * s) * pilot as f64);
    let h = |x: &Array2<f64>| {
        columnwise(x, |v| {
            let mut acc = vec![0.0; v.len()];
            for lin in &lins {
                let jv = lin.jvp(v);
                let w = match gamma {
                    Some(g) => g.precision_mul(&jv),
                    None => jv,
                };
                for (a, b) in acc.iter_mut().zip(lin.vjp(&w)) {
                    *a += scale * b;
                }
            }
            acc
        })
    };
    active_subspace(prior, &h, settings, pilot, sigma, problem_hash)
}

fn full_jacobians(data: &Dataset) -> Result<&Array3<f32>> {
    match (&data.jacobian, data.manifest.jacobian) {
        (Some(j), JacobianKind::Full) if !data.is_empty() => Ok(j),
        _ => Err(Error::invalid(
            "command line",
            "--data",
            "a data set with full Jacobians (dino generate --jacobian full)",
            format!(
                "{:?} Jacobians, {} samples",
                data.manifest.jacobian,
                data.len()
            ),
        )),
    }
}

/// Active subspace from the full Jacobians stored in a data set.
pub fn active_subspace_from_data(
    data: &Dataset,
    prior: &BiLaplacianPrior,
    noise: &NoiseModel,
    settings: EigenSettings,
) -> Result<Basis> {
    let jac = full_jacobians(data)?;
    if jac.shape()[2] != prior.dim() {
        return Err(Error::invalid(
            "command line",
            "--data",
            format!("Jacobians with {} columns", prior.dim()),
            jac.shape()[2],
        ));
    }
    let n_samples = data.len();
    let (sigma, gamma) = noise_of(
        noise,
        data.q
            .rows()
            .into_iter()
            .map(|r| r.to_slice().expect("contiguous rows")),
    );
    let scale = 1.0 / (sigma.map_or(1.0, |s| s * s) * n_samples as f64);
    let h = |x: &Array2<f64>| -> Array2<f64> {
        let x32 = x.mapv(|v| v as f32);
        (0..jac.shape()[0])
            .into_par_iter()
            .map(|k| jac.index_axis(Axis(0), k))
            .map(|j| {
                let jx = j.dot(&x32);
                let w = match gamma {
                    Some(g) => g
                        .precision_mul_columns(jx.mapv(f64::from).view())
                        .mapv(|v| v as f32),
                    None => jx,
                };
                j.t().dot(&w).mapv(f64::from)
            })
            .reduce(|| Array2::zeros(x.dim()), |a, b| a + b)
            * scale
    };
    active_subspace(
        prior,
        &h,
        settings,
        n_samples,
        sigma,
        &data.manifest.problem.hash,
    )
}

fn dense_basis(
    kind: BasisKind,
    second_moment: Array2<f64>,
    rank: usize,
    shift: Option<Array1<f64>>,
    data: &Dataset,
) -> Result<Basis> {
    let d = second_moment.nrows();
    check_rank(rank, d, "the output dimension d_Q")?;
    let (values, vectors) = symmetric_eigen(&second_moment);
    let decoder = vectors.slice(ndarray::s![.., ..rank]).to_owned();
    Ok(Basis {
        info: BasisInfo::new(kind, rank, d, &data.manifest.problem.hash, data.len(), None),
        eigenvalues: values.slice(ndarray::s![..rank]).to_owned(),
        encoder: decoder.clone(),
        decoder,
        shift,
    })
}

/// POD of the observables, shifted by their mean.
pub fn pod(data: &Dataset, rank: usize) -> Result<Basis> {
    if data.is_empty() {
        return Err(Error::invalid(
            "command line",
            "--data",
            "a data set with samples",
            "none",
        ));
    }
    let mean = data.q.mean_axis(Axis(0)).expect("non-empty");
    let centered = &data.q - &mean;
    let moment = centered.t().dot(&centered) / data.len() as f64;
    dense_basis(BasisKind::Pod, moment, rank, Some(mean), data)
}

/// Derivative outer-product basis E[J Jᵀ] from full Jacobians.
pub fn jjt(data: &Dataset, rank: usize) -> Result<Basis> {
    let jac = full_jacobians(data)?;
    let d_q = jac.shape()[1];
    let moment = (0..jac.shape()[0])
        .into_par_iter()
        .map(|k| jac.index_axis(Axis(0), k))
        .map(|j| j.dot(&j.t()).mapv(f64::from))
        .reduce(|| Array2::zeros((d_q, d_q)), |a, b| a + b)
        / data.len() as f64;
    dense_basis(BasisKind::Jjt, moment, rank, None, data)
}
