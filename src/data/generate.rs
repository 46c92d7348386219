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
    chunk_record_name, chunk_stem, ArraySpec, BasisRecord, ChunkRecord, Cost, Failure,
    JacobianKind, Manifest, ParametersRecord, ProblemRecord, SamplingRecord, FORMAT,
};
use crate::error::{Error, Result};
use crate::io::checksum;
pub use crate::map::projected_jacobian;
use crate::map::JacobianNeed;
use crate::measure::Laplace;
use crate::models::PdeModel;
use crate::prior::BiLaplacianPrior;
use crate::problem::Problem;
use crate::rng::{stream, Purpose};
use crate::store::{ChunkStore, Stored};

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
    /// The external model did not answer (never recorded as a failure).
    Unanswered(Error),
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
    let need = match (kind, basis) {
        (JacobianKind::None, _) => JacobianNeed::None,
        (JacobianKind::Full, _) => JacobianNeed::Full,
        (JacobianKind::Projected, Some(v)) => JacobianNeed::Projected(v),
        (JacobianKind::Projected, None) => {
            unreachable!("checked: projected Jacobians need a basis")
        }
    };
    match model.output_and_jacobian(&m, need) {
        Ok((q, jacobian)) => Sample::Solved {
            q,
            m,
            jacobian: jacobian.map(|j| j.iter().map(|&x| x as f32).collect()),
        },
        // a model server that does not answer is not a failed sample: stop, keep what is written
        Err(Error::Peer { peer, message }) => Sample::Unanswered(Error::peer(
            peer,
            format!(
                "{message}; sample {i}: the chunks written so far are kept, rerun the same \
                 command when the model answers again to go on"
            ),
        )),
        Err(e) => Sample::Failed {
            m,
            reason: e.to_string(),
        },
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
    ChunkStore::open(dir).is_ok_and(|store| store.files_verify(&record.files))
}

/// Checks the counts of the command line: shard K/N, samples, chunk size.
fn check_counts(opts: &GenerateOptions) -> Result<()> {
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
    Ok(())
}

/// The files the command line names (basis, saved Laplace approximation, given parameters), read
/// and checked, with their records for the manifest.
struct Inputs {
    basis: Option<(Array2<f64>, BasisRecord)>,
    laplace: Option<Laplace>,
    sampling: Option<SamplingRecord>,
    given: Option<(Array2<f64>, ParametersRecord)>,
}

impl Inputs {
    fn read(problem: &Problem, opts: &GenerateOptions, d_m: usize) -> Result<Self> {
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
        let (laplace, sampling) = read_laplace(problem, opts, d_m)?;
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
        Ok(Inputs {
            basis,
            laplace,
            sampling,
            given,
        })
    }

    /// Columns of a sample's Jacobian: d_M (full), r (projected), none.
    fn jacobian_cols(&self, kind: JacobianKind, d_m: usize) -> Option<usize> {
        match kind {
            JacobianKind::None => None,
            JacobianKind::Full => Some(d_m),
            JacobianKind::Projected => self.basis.as_ref().map(|(v, _)| v.ncols()),
        }
    }
}

/// The saved Laplace approximation of `--laplace`, tempered, and its record.
fn read_laplace(
    problem: &Problem,
    opts: &GenerateOptions,
    d_m: usize,
) -> Result<(Option<Laplace>, Option<SamplingRecord>)> {
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
    Ok((laplace, sampling))
}

/// The manifest of this job, without chunks yet.
fn new_manifest(
    problem: &Problem,
    model: &dyn PdeModel,
    opts: &GenerateOptions,
    inputs: &Inputs,
) -> Manifest {
    let (d_m, d_q) = (model.input_dim(), model.output_dim());
    let (start, end) = shard_range(opts.samples, opts.shard);
    let spec = |shape: Vec<usize>, dtype: &str| ArraySpec {
        shape,
        dtype: dtype.into(),
    };
    let mut arrays = BTreeMap::new();
    arrays.insert("m".to_string(), spec(vec![d_m], "<f8"));
    arrays.insert("q".to_string(), spec(vec![d_q], "<f8"));
    if let Some(c) = inputs.jacobian_cols(opts.jacobian, d_m) {
        arrays.insert("J".to_string(), spec(vec![d_q, c], "<f4"));
    }
    Manifest {
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
        basis: inputs.basis.as_ref().map(|(_, r)| r.clone()),
        sampling: inputs.sampling.clone(),
        parameters: inputs.given.as_ref().map(|(_, record)| record.clone()),
        arrays,
        chunks: Vec::new(),
        failures: Vec::new(),
        cost: Cost::default(),
    }
}

/// Refuses a folder that holds another job's data set.
fn check_same_job(dir: &Path, manifest: &Manifest) -> Result<()> {
    if !dir.join("manifest.json").exists() {
        return Ok(());
    }
    let existing = Manifest::read(dir)?;
    match existing.same_job(manifest) {
        None => Ok(()),
        Some(what) => Err(Error::invalid(
            dir.join("manifest.json").display().to_string(),
            what,
            format!("the {what} of the data set already in this folder (use another --out)"),
            "a different one on the command line",
        )),
    }
}

/// The chunks of `ranges` completed by earlier runs (records and checksums verify), by start.
fn completed_chunks(store: &ChunkStore, ranges: &[(usize, usize)]) -> BTreeMap<usize, ChunkRecord> {
    let mut done = BTreeMap::new();
    for &(s, e) in ranges {
        match store.stored::<ChunkRecord>(&chunk_record_name(s, e)) {
            Stored::Verified(record) => {
                done.insert(s, record);
            }
            Stored::Corrupt => {
                eprintln!("chunk {s}..{e}: record or data do not verify; generating it again")
            }
            Stored::Missing => {}
        }
    }
    done
}

/// The manifest's chunks, failures and cost from the completed chunks; `per_sample_jac` linear
/// solves per sample for its Jacobian data.
fn rebuild(manifest: &mut Manifest, done: &BTreeMap<usize, ChunkRecord>, per_sample_jac: usize) {
    manifest.chunks = done.values().cloned().collect();
    manifest.failures = done.values().flat_map(|c| c.failures.clone()).collect();
    let samples: usize = done.values().map(|c| c.end - c.start).sum();
    let wall: f64 = done.values().map(|c| c.wall_s).sum();
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
}

fn progress_bar(opts: &GenerateOptions, len: usize, model: &str, position: usize) -> ProgressBar {
    let progress = if opts.progress {
        ProgressBar::new(len as u64)
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} samples, {per_sec}, ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    progress.set_message(format!("generating {model}"));
    progress.set_position(position as u64);
    progress
}

/// What one run computes with: the model, the distribution of m, the basis.
struct Job<'a> {
    model: &'a dyn PdeModel,
    distribution: Distribution<'a>,
    basis: Option<&'a Array2<f64>>,
    /// Columns of a sample's Jacobian (none without Jacobians).
    jac_cols: Option<usize>,
    opts: &'a GenerateOptions,
}

/// The rows of one chunk: m, q (NaN for failed samples) and J (float32, NaN for failed samples).
struct ChunkArrays {
    m: Array2<f64>,
    q: Array2<f64>,
    j: Option<Array3<f32>>,
    failures: Vec<Failure>,
}

impl Job<'_> {
    /// Computes samples `s..e` in parallel and gathers them; a failed sample stops the run unless
    /// failures are allowed.
    fn compute(&self, (s, e): (usize, usize)) -> Result<ChunkArrays> {
        let samples: Vec<Sample> = (s..e)
            .into_par_iter()
            .map(|i| {
                compute_sample(
                    self.model,
                    &self.distribution,
                    self.opts.seed,
                    i,
                    self.opts.jacobian,
                    self.basis,
                )
            })
            .collect();
        let (c, d_m, d_q) = (e - s, self.model.input_dim(), self.model.output_dim());
        let mut out = ChunkArrays {
            m: Array2::<f64>::zeros((c, d_m)),
            q: Array2::<f64>::from_elem((c, d_q), f64::NAN),
            j: self
                .jac_cols
                .map(|cols| Array3::<f32>::from_elem((c, d_q, cols), f32::NAN)),
            failures: Vec::new(),
        };
        for (row, sample) in samples.into_iter().enumerate() {
            match sample {
                Sample::Solved { m, q, jacobian } => {
                    out.m.row_mut(row).assign(&ndarray::ArrayView1::from(&m));
                    out.q.row_mut(row).assign(&ndarray::ArrayView1::from(&q));
                    if let (Some(j), Some(values)) = (out.j.as_mut(), jacobian) {
                        j.index_axis_mut(ndarray::Axis(0), row)
                            .as_slice_mut()
                            .expect("standard layout")
                            .copy_from_slice(&values);
                    }
                }
                Sample::Unanswered(e) => return Err(e),
                Sample::Failed { m, reason } => {
                    let sample = s + row;
                    if !self.opts.allow_failures {
                        return Err(Error::numerical(
                            format!("sample {sample}"),
                            format!("{reason} (rerun with --allow-failures to record failed samples and go on)"),
                        ));
                    }
                    out.m.row_mut(row).assign(&ndarray::ArrayView1::from(&m));
                    out.failures.push(Failure { sample, reason });
                }
            }
        }
        Ok(out)
    }

    /// Computes chunk `s..e` and writes it: its arrays, then its record.
    fn write_chunk(&self, store: &ChunkStore, (s, e): (usize, usize)) -> Result<ChunkRecord> {
        let t0 = Instant::now();
        let arrays = self.compute((s, e))?;
        let stem = chunk_stem(s, e);
        let name = |key: &str| format!("{key}_{stem}.npy");
        let mut files = vec![
            ("m", name("m"), npy_bytes(&arrays.m)),
            ("q", name("q"), npy_bytes(&arrays.q)),
        ];
        if let Some(j) = &arrays.j {
            files.push(("J", name("J"), npy_bytes(j)));
        }
        let record = ChunkRecord {
            start: s,
            end: e,
            files: store.write_files(files)?,
            failures: arrays.failures,
            wall_s: t0.elapsed().as_secs_f64(),
        };
        store.commit(&chunk_record_name(s, e), &record)?;
        Ok(record)
    }
}

/// Generates (or resumes) the data set described by `opts` for `problem`.
pub fn generate(problem: &Problem, opts: &GenerateOptions) -> Result<Manifest> {
    check_counts(opts)?;
    let model = problem.model()?;
    let prior = problem.prior()?;
    let (d_m, d_q) = (model.input_dim(), model.output_dim());
    let inputs = Inputs::read(problem, opts, d_m)?;
    let jac_cols = inputs.jacobian_cols(opts.jacobian, d_m);
    let per_sample_jac = match opts.jacobian {
        JacobianKind::None => 0,
        JacobianKind::Full => d_q,
        JacobianKind::Projected => jac_cols.unwrap_or(0).min(d_q),
    };
    let mut manifest = new_manifest(problem, model.as_ref(), opts, &inputs);
    let (start, end) = (manifest.start, manifest.end);
    let dir = &opts.out;
    let store = ChunkStore::open(dir)?;
    check_same_job(dir, &manifest)?;
    let ranges = ChunkStore::ranges(start, end, opts.chunk_size);
    let mut done = completed_chunks(&store, &ranges);
    rebuild(&mut manifest, &done, per_sample_jac);
    manifest.write(dir)?;
    let finished = done.values().map(|c| c.end - c.start).sum();
    let progress = progress_bar(opts, end - start, model.name(), finished);
    let job = Job {
        model: model.as_ref(),
        distribution: Distribution {
            prior: &prior,
            laplace: inputs.laplace.as_ref(),
            given: inputs.given.as_ref().map(|(m, _)| m),
        },
        basis: inputs.basis.as_ref().map(|(v, _)| v),
        jac_cols,
        opts,
    };
    let run_start = Instant::now();
    for &(s, e) in &ranges {
        if done.contains_key(&s) {
            continue;
        }
        let record = job
            .write_chunk(&store, (s, e))
            .inspect_err(|_| progress.abandon())?;
        done.insert(s, record);
        rebuild(&mut manifest, &done, per_sample_jac);
        manifest.write(dir)?;
        progress.inc((e - s) as u64);
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
