//! `dino generate`: samples m ~ prior (or a saved Laplace approximation of a posterior), q(m)
//! and Jacobians, written in resumable chunks.
//!
//! Sample i is drawn from the random stream (seed, prior-sample, i) alone, so a data set is
//! bitwise identical whatever the thread count, sharding or interruptions. Chunks are computed one
//! after the other, the samples inside a chunk in parallel (rayon); each chunk's arrays are written
//! atomically, then its record, then the manifest. Re-running the same command skips the chunks
//! whose records and checksums verify and redoes the rest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array2, Array3};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use rayon::prelude::*;

use super::manifest::{
    chunk_stem, ArraySpec, BasisRecord, ChunkRecord, Cost, Failure, FileRecord, JacobianKind,
    Manifest, ParametersRecord, ProblemRecord, SamplingRecord, FORMAT,
};
use crate::error::{Error, Result};
use crate::io::checksum;
use crate::io::write_atomic;
use crate::map::Linearization;
use crate::measure::Laplace;
use crate::models::PdeModel;
use crate::prior::BiLaplacianPrior;
use crate::problem::Problem;
use crate::rng::{stream, Purpose};

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Samples in the whole data set.
    pub samples: usize,
    pub seed: u64,
    pub out: PathBuf,
    pub jacobian: JacobianKind,
    /// Input basis V_r (d_M × r .npy) for projected Jacobians.
    pub basis: Option<PathBuf>,
    /// (k, K): generate the k-th of K contiguous slices (1-based).
    pub shard: (usize, usize),
    pub chunk_size: usize,
    /// Record failed samples and go on instead of stopping.
    pub allow_failures: bool,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Draw m from this saved Laplace approximation instead of the prior ...
    pub laplace: Option<PathBuf>,
    /// ... tempered by this noise-variance factor τ ≥ 1.
    pub temper: f64,
    /// Or take sample i's parameter from row i of this .npy (n × d_M, n ≥ samples).
    pub parameters: Option<PathBuf>,
}

impl GenerateOptions {
    /// `samples` samples with `seed` into `out`, with the command line's defaults: full
    /// Jacobians, one shard, chunks of 32, stop at the first failure, no progress bar.
    pub fn new(samples: usize, seed: u64, out: impl Into<PathBuf>) -> Self {
        GenerateOptions {
            samples,
            seed,
            out: out.into(),
            jacobian: JacobianKind::Full,
            basis: None,
            shard: (1, 1),
            chunk_size: 32,
            allow_failures: false,
            progress: false,
            laplace: None,
            temper: 1.0,
            parameters: None,
        }
    }
}

/// Samples `start..end` of shard k of K over `n` samples.
pub fn shard_range(n: usize, (k, count): (usize, usize)) -> (usize, usize) {
    (n * (k - 1) / count, n * k / count)
}

enum Sample {
    Solved {
        m: Vec<f64>,
        q: Vec<f64>,
        jacobian: Option<Vec<f32>>,
    },
    Failed {
        m: Vec<f64>,
        reason: String,
    },
}

fn compute_sample(
    model: &dyn PdeModel,
    distribution: &Distribution<'_>,
    seed: u64,
    i: usize,
    kind: JacobianKind,
    basis: Option<&Array2<f64>>,
) -> Sample {
    let mut rng = stream(seed, Purpose::PriorSample, i as u64);
    let m = match (distribution.given, distribution.laplace) {
        (Some(rows), _) => rows.row(i).to_vec(),
        (None, Some(laplace)) => laplace.sample(distribution.prior, &mut rng),
        (None, None) => distribution.prior.sample(&mut rng),
    };
    let lin = match model.linearize(&m) {
        Ok(lin) => lin,
        Err(e) => {
            return Sample::Failed {
                m,
                reason: e.to_string(),
            }
        }
    };
    let jacobian = match (kind, basis) {
        (JacobianKind::None, _) => None,
        (JacobianKind::Full, _) => Some(lin.jacobian().iter().map(|&x| x as f32).collect()),
        (JacobianKind::Projected, Some(v)) => Some(
            projected_jacobian(lin.as_ref(), v)
                .iter()
                .map(|&x| x as f32)
                .collect(),
        ),
        (JacobianKind::Projected, None) => {
            unreachable!("checked: projected Jacobians need a basis")
        }
    };
    Sample::Solved {
        q: lin.output().to_vec(),
        m,
        jacobian,
    }
}

/// What the parameters are drawn from: the prior, or a Laplace approximation of a posterior
/// (training data where a posterior lives: the surrogate of delayed-acceptance MCMC), or given
/// rows (e.g. a chain's saved states).
struct Distribution<'a> {
    prior: &'a BiLaplacianPrior,
    laplace: Option<&'a Laplace>,
    given: Option<&'a Array2<f64>>,
}

/// J V for a d_M × r basis V: r incremental solves when r ≤ d_Q, else the full Jacobian times V.
pub fn projected_jacobian(lin: &dyn Linearization, v: &Array2<f64>) -> Array2<f64> {
    let (d_q, r) = (lin.output().len(), v.ncols());
    if r <= d_q {
        let mut out = Array2::zeros((d_q, r));
        for (j, col) in v.columns().into_iter().enumerate() {
            let jv = lin.jvp(&col.to_vec());
            out.column_mut(j).assign(&ndarray::ArrayView1::from(&jv));
        }
        out
    } else {
        lin.jacobian().dot(v)
    }
}

fn npy_bytes<T: WriteNpyExt + ?Sized>(array: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    array
        .write_npy(&mut bytes)
        .expect("writing to memory cannot fail");
    bytes
}

/// Reads a 2-D float64 .npy given on the command line as `field`, checks that it is finite and
/// that `shape_ok` accepts its shape (else the error says `expected`), and returns it with the
/// checksum of the file.
fn read_checked_matrix(
    path: &Path,
    field: &str,
    expected: &str,
    shape_ok: impl Fn(usize, usize) -> bool,
) -> Result<(Array2<f64>, String)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let file = path.display().to_string();
    let a = Array2::<f64>::read_npy(&bytes[..])
        .map_err(|e| Error::invalid(&file, field, expected, e))?;
    if !shape_ok(a.nrows(), a.ncols()) {
        let found = format!("shape ({}, {})", a.nrows(), a.ncols());
        return Err(Error::invalid(&file, field, expected, found));
    }
    if a.iter().any(|x| !x.is_finite()) {
        return Err(Error::invalid(
            &file,
            field,
            "finite numbers",
            "NaN or infinity",
        ));
    }
    Ok((a, checksum::hex(&bytes)))
}

/// Reads the basis for projected Jacobians and checks its first dimension.
fn read_basis(path: &Path, d_m: usize) -> Result<(Array2<f64>, BasisRecord)> {
    let expected = format!(
        "a 2-D float64 .npy basis of shape ({d_m}, r) for this problem's {d_m} parameter nodes"
    );
    let (v, checksum) = read_checked_matrix(path, "--basis", &expected, |rows, cols| {
        rows == d_m && cols > 0
    })?;
    let record = BasisRecord {
        file: path.display().to_string(),
        checksum,
        rank: v.ncols(),
    };
    Ok((v, record))
}

/// Reads the given parameters (`--parameters`): n × d_M float64 with n ≥ `samples`, finite.
fn read_parameters(
    path: &Path,
    d_m: usize,
    samples: usize,
) -> Result<(Array2<f64>, ParametersRecord)> {
    let expected = format!(
        "a 2-D float64 .npy array of shape (n ≥ {samples}, {d_m}): one parameter per row (--samples {samples}; {d_m} parameter nodes)"
    );
    let (m, checksum) = read_checked_matrix(path, "--parameters", &expected, |rows, cols| {
        cols == d_m && rows >= samples
    })?;
    let record = ParametersRecord {
        file: path.display().to_string(),
        checksum,
        rows: m.nrows(),
    };
    Ok((m, record))
}

/// True when every file of `record` exists in `dir` with its recorded checksum.
pub fn chunk_verifies(dir: &Path, record: &ChunkRecord) -> bool {
    record
        .files
        .values()
        .all(|f| std::fs::read(dir.join(&f.name)).is_ok_and(|b| checksum::hex(&b) == f.checksum))
}

/// Removes the temporary files of writers that were killed (one run writes a folder at a time).
fn remove_stale_temporaries(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Generates (or resumes) the data set described by `opts` for `problem`.
pub fn generate(problem: &Problem, opts: &GenerateOptions) -> Result<Manifest> {
    let (k, count) = opts.shard;
    if count == 0 || k == 0 || k > count {
        return Err(Error::invalid(
            "command line",
            "--shard",
            "K/N with 1 ≤ K ≤ N",
            format!("{k}/{count}"),
        ));
    }
    if opts.samples == 0 {
        return Err(Error::invalid(
            "command line",
            "--samples",
            "a positive number of samples",
            0,
        ));
    }
    if opts.chunk_size == 0 {
        return Err(Error::invalid(
            "command line",
            "--chunk-size",
            "a positive number",
            0,
        ));
    }
    let model = problem.model()?;
    let prior = problem.prior()?;
    let (d_m, d_q) = (model.input_dim(), model.output_dim());
    let basis = match (opts.jacobian, &opts.basis) {
        (JacobianKind::Projected, Some(path)) => Some(read_basis(path, d_m)?),
        (JacobianKind::Projected, None) => {
            return Err(Error::invalid(
                "command line",
                "--basis",
                "an input basis (.npy, d_M × r) for --jacobian projected",
                "none",
            ))
        }
        _ => None,
    };
    if !(opts.temper >= 1.0 && opts.temper.is_finite()) {
        return Err(Error::invalid(
            "command line",
            "--temper",
            "a noise-variance factor τ ≥ 1",
            opts.temper,
        ));
    }
    let (laplace, sampling) = match &opts.laplace {
        None => (None, None),
        Some(dir) => {
            let l = Laplace::load(dir, &problem.hash(), d_m)?;
            let record = SamplingRecord {
                laplace: dir.display().to_string(),
                checksum: l.checksum(),
                rank: l.eigenvalues.len(),
                temper: opts.temper,
            };
            (Some(l.tempered(opts.temper)), Some(record))
        }
    };
    if opts.parameters.is_some() && opts.laplace.is_some() {
        return Err(Error::invalid(
            "command line",
            "--parameters",
            "either --parameters or --laplace (given parameters are not drawn)",
            "both",
        ));
    }
    let given = match &opts.parameters {
        Some(path) => Some(read_parameters(path, d_m, opts.samples)?),
        None => None,
    };
    let distribution = Distribution {
        prior: &prior,
        laplace: laplace.as_ref(),
        given: given.as_ref().map(|(m, _)| m),
    };
    let (start, end) = shard_range(opts.samples, opts.shard);
    let mut arrays = BTreeMap::new();
    arrays.insert(
        "m".to_string(),
        ArraySpec {
            shape: vec![d_m],
            dtype: "<f8".into(),
        },
    );
    arrays.insert(
        "q".to_string(),
        ArraySpec {
            shape: vec![d_q],
            dtype: "<f8".into(),
        },
    );
    let jac_cols = match opts.jacobian {
        JacobianKind::None => None,
        JacobianKind::Full => Some(d_m),
        JacobianKind::Projected => basis.as_ref().map(|(v, _)| v.ncols()),
    };
    if let Some(c) = jac_cols {
        arrays.insert(
            "J".to_string(),
            ArraySpec {
                shape: vec![d_q, c],
                dtype: "<f4".into(),
            },
        );
    }
    let mut manifest = Manifest {
        format: FORMAT.to_string(),
        problem: ProblemRecord {
            file: problem.path.display().to_string(),
            hash: problem.hash(),
            model: model.name().to_string(),
            mesh: problem.mesh_size(),
        },
        seed: opts.seed,
        total_samples: opts.samples,
        start,
        end,
        chunk_size: opts.chunk_size,
        jacobian: opts.jacobian,
        basis: basis.as_ref().map(|(_, r)| r.clone()),
        sampling,
        parameters: given.as_ref().map(|(_, record)| record.clone()),
        arrays,
        chunks: Vec::new(),
        failures: Vec::new(),
        cost: Cost::default(),
    };
    let dir = &opts.out;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    remove_stale_temporaries(dir);
    if dir.join("manifest.json").exists() {
        let existing = Manifest::read(dir)?;
        if let Some(what) = existing.same_job(&manifest) {
            return Err(Error::invalid(
                dir.join("manifest.json").display().to_string(),
                what,
                format!("the {what} of the data set already in this folder (use another --out)"),
                "a different one on the command line",
            ));
        }
    }
    // completed chunks from earlier runs
    let ranges: Vec<(usize, usize)> = (start..end)
        .step_by(opts.chunk_size)
        .map(|s| (s, (s + opts.chunk_size).min(end)))
        .collect();
    let mut done = BTreeMap::new();
    for &(s, e) in &ranges {
        let path = dir.join(format!("chunk_{}.json", chunk_stem(s, e)));
        if let Ok(text) = std::fs::read_to_string(&path) {
            match serde_json::from_str::<ChunkRecord>(&text) {
                Ok(record) if chunk_verifies(dir, &record) => {
                    done.insert(s, record);
                }
                _ => eprintln!("chunk {s}..{e}: record or data do not verify; generating it again"),
            }
        }
    }
    let rebuild = |manifest: &mut Manifest, done: &BTreeMap<usize, ChunkRecord>| {
        manifest.chunks = done.values().cloned().collect();
        manifest.failures = done.values().flat_map(|c| c.failures.clone()).collect();
        let samples: usize = done.values().map(|c| c.end - c.start).sum();
        let wall: f64 = done.values().map(|c| c.wall_s).sum();
        let per_sample_jac = match opts.jacobian {
            JacobianKind::None => 0,
            JacobianKind::Full => d_q,
            JacobianKind::Projected => jac_cols.unwrap_or(0).min(d_q),
        };
        manifest.cost = Cost {
            wall_s: wall,
            forward_solves: samples,
            jacobian_solves: samples * per_sample_jac,
            samples_per_s: if wall > 0.0 {
                samples as f64 / wall
            } else {
                0.0
            },
            solves_per_s: if wall > 0.0 {
                (samples * (1 + per_sample_jac)) as f64 / wall
            } else {
                0.0
            },
            threads: rayon::current_num_threads(),
        };
    };
    rebuild(&mut manifest, &done);
    manifest.write(dir)?;

    let progress = if opts.progress {
        ProgressBar::new((end - start) as u64)
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} samples, {per_sec}, ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    progress.set_message(format!("generating {}", model.name()));
    progress.set_position(done.values().map(|c| c.end - c.start).sum::<usize>() as u64);
    let run_start = Instant::now();
    for &(s, e) in &ranges {
        if done.contains_key(&s) {
            continue;
        }
        let t0 = Instant::now();
        let samples: Vec<Sample> = (s..e)
            .into_par_iter()
            .map(|i| {
                compute_sample(
                    model.as_ref(),
                    &distribution,
                    opts.seed,
                    i,
                    opts.jacobian,
                    basis.as_ref().map(|(v, _)| v),
                )
            })
            .collect();
        let mut failures = Vec::new();
        let c = e - s;
        let mut m_arr = Array2::<f64>::zeros((c, d_m));
        let mut q_arr = Array2::<f64>::from_elem((c, d_q), f64::NAN);
        let mut j_arr = jac_cols.map(|cols| Array3::<f32>::from_elem((c, d_q, cols), f32::NAN));
        for (row, sample) in samples.into_iter().enumerate() {
            match sample {
                Sample::Solved { m, q, jacobian } => {
                    m_arr.row_mut(row).assign(&ndarray::ArrayView1::from(&m));
                    q_arr.row_mut(row).assign(&ndarray::ArrayView1::from(&q));
                    if let (Some(j), Some(values)) = (j_arr.as_mut(), jacobian) {
                        j.index_axis_mut(ndarray::Axis(0), row)
                            .as_slice_mut()
                            .expect("standard layout")
                            .copy_from_slice(&values);
                    }
                }
                Sample::Failed { m, reason } => {
                    let sample = s + row;
                    if !opts.allow_failures {
                        progress.abandon();
                        return Err(Error::numerical(
                            format!("sample {sample}"),
                            format!("{reason} (rerun with --allow-failures to record failed samples and go on)"),
                        ));
                    }
                    m_arr.row_mut(row).assign(&ndarray::ArrayView1::from(&m));
                    failures.push(Failure { sample, reason });
                }
            }
        }
        let stem = chunk_stem(s, e);
        let mut files = BTreeMap::new();
        let mut write = |key: &str, bytes: Vec<u8>| -> Result<()> {
            let name = format!("{key}_{stem}.npy");
            write_atomic(dir.join(&name), |w| w.write_all(&bytes))?;
            files.insert(
                key.to_string(),
                FileRecord {
                    name,
                    checksum: checksum::hex(&bytes),
                },
            );
            Ok(())
        };
        write("m", npy_bytes(&m_arr))?;
        write("q", npy_bytes(&q_arr))?;
        if let Some(j) = &j_arr {
            write("J", npy_bytes(j))?;
        }
        let record = ChunkRecord {
            start: s,
            end: e,
            files,
            failures,
            wall_s: t0.elapsed().as_secs_f64(),
        };
        let text = serde_json::to_string_pretty(&record).expect("records serialize");
        write_atomic(dir.join(format!("chunk_{stem}.json")), |w| {
            w.write_all(text.as_bytes())
        })?;
        done.insert(s, record);
        rebuild(&mut manifest, &done);
        manifest.write(dir)?;
        progress.inc(c as u64);
    }
    progress.finish_and_clear();
    eprintln!(
        "generated samples {start}..{end} of {} ({} failed) for {} in {:.1} s this run: {:.1} samples/s, {:.0} solves/s overall; data in {}",
        opts.samples,
        manifest.failures.len(),
        model.name(),
        run_start.elapsed().as_secs_f64(),
        manifest.cost.samples_per_s,
        manifest.cost.solves_per_s,
        dir.display()
    );
    Ok(manifest)
}
