//! Training data of a control surrogate (MR-DINO): samples (m_i, z_i) with m_i ~ prior and
//! z_i uniform in the box [lower, upper]^{n_z} or in a neighbourhood of a given control
//! ([`control_sample`]), the states u_i = u(z_i, m_i) (all vertices), an ℓ²-orthonormal
//! POD basis Φ of the centred states, and the control Jacobians projected on it, Φᵀ ∂u/∂z
//! (r_U × n_z per sample: what OUU needs, in O(r_U n_z) storage instead of O(d_U n_z)).
//!
//! Two phases, each written atomically and skipped when re-run with the same settings:
//! 1. forward solves → `m.npy`, `z.npy`, `u.npy`, `pod_basis.npy`, `pod_eigenvalues.npy`;
//! 2. Jacobians (Newton warm-started at the stored state: one factorization, one n_z-column
//!    solve per sample) → `control_jacobian.npy` (N × r_U × n_z, float32); then `manifest.json`.
//!
//! Inside a phase the samples are solved in chunks of [`CHUNK`] (in parallel within a chunk), each
//! chunk's rows written atomically to `partial/` with a checksummed record ([`crate::store`]): an
//! interrupted run keeps the chunks that verify and redoes the rest. `partial/settings.json` ties the chunks to the settings; `partial/` is removed at the end.
//!
//! Sample i depends on (seed, i) only.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array1, Array2, Array3, Axis};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::map::{ControlledMap, Linearization};
use crate::models::ControlledDiffusion;
use crate::prior::BiLaplacianPrior;
use crate::problem::Problem;
use crate::rng::{stream, Purpose};
use crate::store::{check_same_settings, Chunk, ChunkStore, Stored};

/// Format tag of a control data manifest.
pub const CONTROL_DATA_FORMAT: &str = "dino-control-data-1";

/// What a control data folder holds and how it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlManifest {
    pub format: String,
    pub problem_file: String,
    pub problem_hash: String,
    pub samples: usize,
    pub seed: u64,
    pub pod_rank: usize,
    pub parameter_dim: usize,
    pub control_dim: usize,
    pub state_dim: usize,
    /// Where the controls were drawn when not in the whole box.
    #[serde(default)]
    pub region: Option<ControlRegion>,
    /// Wall seconds of the forward phase and of the Jacobian phase.
    pub forward_s: f64,
    pub jacobian_s: f64,
}

/// A loaded control data set.
#[derive(Debug, Clone)]
pub struct ControlDataset {
    pub manifest: ControlManifest,
    /// N × d_M
    pub m: Array2<f64>,
    /// N × n_z
    pub z: Array2<f64>,
    /// N × d_U
    pub u: Array2<f64>,
    /// Φ, d_U × r_U (ℓ²-orthonormal columns)
    pub pod_basis: Array2<f64>,
    /// Φᵀ ∂u/∂z, N × r_U × n_z
    pub control_jacobian: Array3<f32>,
}

impl ControlManifest {
    /// True when both describe the same data (problem, samples, seed, ranks, dimensions),
    /// whatever the timings and the path the problem was read from.
    pub fn same_settings(&self, other: &ControlManifest) -> bool {
        self.settings() == other.settings()
    }

    /// The settings part: the manifest without the timings and the path the problem was read from.
    pub fn settings(&self) -> ControlManifest {
        ControlManifest {
            problem_file: String::new(),
            forward_s: 0.0,
            jacobian_s: 0.0,
            ..self.clone()
        }
    }
}

/// The ℓ²-orthonormal POD basis (rank `rank`) of the rows of X (N × d) after centring, by the
/// method of snapshots: X̃ X̃ᵀ v = λ v, φ = X̃ᵀ v / √λ. Returns (Φ, λ).
pub fn pod_of_rows(x: &Array2<f64>, rank: usize) -> Result<(Array2<f64>, Array1<f64>)> {
    let n = x.nrows();
    let centred = x - &x.mean_axis(Axis(0)).expect("at least one row");
    let gram = centred.dot(&centred.t());
    let (values, vectors) = crate::linalg::eigen::symmetric_eigen(&gram);
    // modes by decreasing energy
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let positive = order
        .iter()
        .filter(|&&k| values[k] > 1e-12 * values[order[0]])
        .count();
    if rank == 0 || rank > positive {
        return Err(Error::invalid(
            "POD",
            "rank",
            format!("between 1 and the number of non-zero modes ({positive})"),
            rank,
        ));
    }
    let mut basis = Array2::zeros((x.ncols(), rank));
    for (j, &k) in order[..rank].iter().enumerate() {
        let col = centred.t().dot(&vectors.column(k)) / values[k].sqrt();
        basis.column_mut(j).assign(&col);
    }
    let eig = order[..rank].iter().map(|&k| values[k]).collect();
    Ok((basis, eig))
}

fn npy_bytes<T: WriteNpyExt + ?Sized>(a: &T) -> std::io::Result<Vec<u8>> {
    let mut b = Vec::new();
    a.write_npy(&mut b).map_err(std::io::Error::other)?;
    Ok(b)
}

fn write_npy<T: WriteNpyExt + ?Sized>(path: &Path, a: &T) -> Result<()> {
    let bytes = npy_bytes(a).map_err(|e| Error::io(path, e))?;
    write_atomic(path, |w| w.write_all(&bytes))
}

fn read_npy<T: ReadNpyExt>(path: &Path, what: &str) -> Result<T> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    T::read_npy(std::io::BufReader::new(file))
        .map_err(|e| Error::parse(path, format!("expected {what}: {e}")))
}

fn bar(len: usize, label: &str, progress: bool) -> ProgressBar {
    let bar = if progress {
        ProgressBar::new(len as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} ({eta})")
            .expect("valid template"),
    );
    bar.set_prefix(label.to_string());
    bar
}

/// A neighbourhood of a control z_c: the box Π_k [z_c,k − r, z_c,k + r] ∩ [lower, upper],
/// where data refined around an optimum are drawn (`dino generate --control --control-around`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlRegion {
    pub centre: Vec<f64>,
    pub radius: f64,
}

impl ControlRegion {
    /// Checks the centre against the control dimension and bounds and the radius (> 0); `file`
    /// names the centre's source in errors.
    pub fn new(centre: Vec<f64>, radius: f64, bounds: [f64; 2], file: &str) -> Result<Self> {
        if !(radius > 0.0 && radius.is_finite()) {
            return Err(Error::invalid(
                "command line",
                "--control-radius",
                "a positive half-width",
                radius,
            ));
        }
        if let Some(v) = centre
            .iter()
            .find(|v| !(bounds[0]..=bounds[1]).contains(*v))
        {
            return Err(Error::invalid(
                file,
                "--control-around",
                format!("a control inside the bounds [{}, {}]", bounds[0], bounds[1]),
                v,
            ));
        }
        Ok(ControlRegion { centre, radius })
    }

    /// How far z lies outside the region (each component's interval
    /// [z_c,k − r, z_c,k + r] ∩ [lower, upper]): the number of components outside and the largest
    /// distance of one from its interval (0 when z is inside).
    pub fn excess(&self, z: &[f64], bounds: [f64; 2]) -> (usize, f64) {
        let distances = z.iter().zip(&self.centre).map(|(&v, &c)| {
            let lo = (c - self.radius).max(bounds[0]);
            let hi = (c + self.radius).min(bounds[1]);
            (lo - v).max(v - hi).max(0.0)
        });
        distances.fold((0, 0.0), |(n, worst), d| {
            (
                n + usize::from(d > 1e-12 * (1.0 + self.radius)),
                f64::max(worst, d),
            )
        })
    }
}

/// A training control: uniform in the box [lower, upper]^{n_z}, or in `region` (each
/// component uniform in [z_c,k − r, z_c,k + r] ∩ [lower, upper]).
pub fn control_sample(
    rng: &mut impl Rng,
    n_z: usize,
    bounds: [f64; 2],
    region: Option<&ControlRegion>,
) -> Vec<f64> {
    (0..n_z)
        .map(|k| match region {
            None => rng.random_range(bounds[0]..=bounds[1]),
            Some(r) => {
                let lo = (r.centre[k] - r.radius).max(bounds[0]);
                let hi = (r.centre[k] + r.radius).min(bounds[1]);
                rng.random_range(lo..=hi)
            }
        })
        .collect()
}

/// Generates (or resumes) a control data set in `out`.
pub fn generate_control(
    problem: &Problem,
    samples: usize,
    seed: u64,
    pod_rank: usize,
    region: Option<&ControlRegion>,
    out: &Path,
    progress: bool,
) -> Result<ControlDataset> {
    generate_control_in_chunks(
        problem, samples, seed, pod_rank, region, out, progress, CHUNK, None,
    )
}

/// Samples per resumable chunk.
pub const CHUNK: usize = 256;

/// [`generate_control`] with a chunk size, stopping with an error after `stop_after` newly
/// computed chunks (to test resuming).
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub fn generate_control_in_chunks(
    problem: &Problem,
    samples: usize,
    seed: u64,
    pod_rank: usize,
    region: Option<&ControlRegion>,
    out: &Path,
    progress: bool,
    chunk: usize,
    stop_after: Option<usize>,
) -> Result<ControlDataset> {
    let model = problem.control_problem()?;
    let prior = problem.prior()?;
    check_counts(samples, pod_rank)?;
    let mut manifest = ControlManifest {
        format: CONTROL_DATA_FORMAT.into(),
        problem_file: problem.path.display().to_string(),
        problem_hash: problem.hash(),
        samples,
        seed,
        pod_rank,
        parameter_dim: model.parameter_dim(),
        control_dim: model.control_dim(),
        state_dim: ControlledMap::output_dim(&model),
        region: region.cloned(),
        forward_s: 0.0,
        jacobian_s: 0.0,
    };
    if let Some(done) = completed(out, &manifest)? {
        eprintln!("{} is complete; nothing to do", out.display());
        return Ok(done);
    }
    if let Some(r) = region {
        if r.centre.len() != manifest.control_dim {
            return Err(Error::invalid(
                "command line",
                "--control-around",
                format!("a control of length n_z = {}", manifest.control_dim),
                r.centre.len(),
            ));
        }
    }
    let mut partial = Partial::open(out, &manifest, chunk, stop_after)?;
    let phases = Phases {
        model: &model,
        prior: &prior,
        out,
        progress,
    };
    let (m, z, u, pod_basis) = phases.forward(&mut partial, &mut manifest)?;
    let t1 = Instant::now();
    let control_jacobian = phases.jacobians(&mut partial, (&m, &z, &u), &pod_basis, pod_rank)?;
    write_npy(&out.join("control_jacobian.npy"), &control_jacobian)?;
    manifest.jacobian_s = t1.elapsed().as_secs_f64();
    let text = serde_json::to_string_pretty(&manifest).expect("serializable");
    write_atomic(out.join("manifest.json"), |w| w.write_all(text.as_bytes()))?;
    partial.finish();
    Ok(ControlDataset {
        manifest,
        m,
        z,
        u,
        pod_basis,
        control_jacobian,
    })
}

/// Checks the sample count (≥ 2) and the POD rank (1 ≤ r_U < N).
fn check_counts(samples: usize, pod_rank: usize) -> Result<()> {
    if samples < 2 {
        return Err(Error::invalid(
            "command line",
            "--samples",
            "at least 2",
            samples,
        ));
    }
    if pod_rank == 0 || pod_rank >= samples {
        return Err(Error::invalid(
            "command line",
            "--pod-rank",
            format!("between 1 and samples − 1 = {}", samples - 1),
            pod_rank,
        ));
    }
    Ok(())
}

/// The data set already complete in `out` with these settings; an error naming the first setting
/// that differs when it was made with others; `None` when `out` holds no complete data set.
fn completed(out: &Path, manifest: &ControlManifest) -> Result<Option<ControlDataset>> {
    let manifest_path = out.join("manifest.json");
    if !manifest_path.exists() {
        return Ok(None);
    }
    let done = load_control(out)?;
    check_same_settings(
        &manifest.settings(),
        &done.manifest.settings(),
        &manifest_path,
    )?;
    Ok(Some(done))
}

/// The two phases of a control data set.
struct Phases<'a> {
    model: &'a ControlledDiffusion,
    prior: &'a BiLaplacianPrior,
    out: &'a Path,
    progress: bool,
}

/// m, z, u (one row per sample) and the POD basis Φ.
type ForwardData = (Array2<f64>, Array2<f64>, Array2<f64>, Array2<f64>);

impl Phases<'_> {
    /// Phase 1: the forward solves and the POD basis, read back when `phase1.json` (the manifest
    /// as of the end of the forward phase) says they are done with these settings.
    fn forward(
        &self,
        partial: &mut Partial,
        manifest: &mut ControlManifest,
    ) -> Result<ForwardData> {
        let (out, samples, seed) = (self.out, manifest.samples, manifest.seed);
        let phase1 = out.join("phase1.json");
        let forward_done = std::fs::read_to_string(&phase1)
            .ok()
            .and_then(|text| serde_json::from_str::<ControlManifest>(&text).ok())
            .filter(|done| done.same_settings(manifest));
        if let Some(done) = forward_done {
            eprintln!("resuming {}: forward phase already done", out.display());
            manifest.forward_s = done.forward_s;
            return Ok((
                read_npy::<Array2<f64>>(&out.join("m.npy"), "N × d_M float64")?,
                read_npy::<Array2<f64>>(&out.join("z.npy"), "N × n_z float64")?,
                read_npy::<Array2<f64>>(&out.join("u.npy"), "N × d_U float64")?,
                read_npy::<Array2<f64>>(&out.join("pod_basis.npy"), "d_U × r_U float64")?,
            ));
        }
        let t0 = Instant::now();
        let b = bar(samples, "forward solves", self.progress);
        let (model, prior, n_z) = (self.model, self.prior, manifest.control_dim);
        let bounds = model.bounds();
        let region = manifest.region.as_ref();
        let inputs = |i: usize| {
            let m = prior.sample(&mut stream(seed, Purpose::PriorSample, i as u64));
            let mut rng = stream(seed, Purpose::ControlSample, i as u64);
            (m, control_sample(&mut rng, n_z, bounds, region))
        };
        let u = partial.rows("forward", samples, manifest.state_dim, &b, |i| {
            let (m, z) = inputs(i);
            let state = model
                .solve(&z, &m, None)
                .map_err(|e| Error::numerical(format!("control data sample {i}"), e.to_string()))?;
            Ok(state.output().to_vec())
        })?;
        b.finish_and_clear();
        let rows: Vec<(Vec<f64>, Vec<f64>)> = (0..samples).into_par_iter().map(inputs).collect();
        let m = Array2::from_shape_fn((samples, manifest.parameter_dim), |(i, j)| rows[i].0[j]);
        let z = Array2::from_shape_fn((samples, n_z), |(i, j)| rows[i].1[j]);
        let (pod_basis, pod_eigenvalues) = pod_of_rows(&u, manifest.pod_rank)?;
        write_npy(&out.join("m.npy"), &m)?;
        write_npy(&out.join("z.npy"), &z)?;
        write_npy(&out.join("u.npy"), &u)?;
        write_npy(&out.join("pod_basis.npy"), &pod_basis)?;
        write_npy(&out.join("pod_eigenvalues.npy"), &pod_eigenvalues)?;
        manifest.forward_s = t0.elapsed().as_secs_f64();
        let text = serde_json::to_string_pretty(&manifest).expect("serializable");
        write_atomic(&phase1, |w| w.write_all(text.as_bytes()))?;
        partial.remove("forward");
        Ok((m, z, u, pod_basis))
    }

    /// Phase 2: Φᵀ ∂u/∂z for every sample (Newton warm-started at the stored state), float32,
    /// N × r_U × n_z.
    fn jacobians(
        &self,
        partial: &mut Partial,
        (m, z, u): (&Array2<f64>, &Array2<f64>, &Array2<f64>),
        pod_basis: &Array2<f64>,
        pod_rank: usize,
    ) -> Result<Array3<f32>> {
        let (samples, n_z) = (m.nrows(), z.ncols());
        let b = bar(samples, "control Jacobians", self.progress);
        let dofs = self.model.model().dofs();
        let blocks = partial.rows("jacobian", samples, pod_rank * n_z, &b, |i| {
            let initial = dofs.gather(u.row(i).as_slice().expect("contiguous rows"));
            let state = self
                .model
                .solve(
                    z.row(i).as_slice().expect("contiguous"),
                    m.row(i).as_slice().expect("contiguous"),
                    Some(&initial),
                )
                .map_err(|e| Error::numerical(format!("control data sample {i}"), e.to_string()))?;
            Ok(pod_basis
                .t()
                .dot(&state.jacobian())
                .into_raw_vec_and_offset()
                .0)
        })?;
        b.finish_and_clear();
        Ok(blocks
            .mapv(|v| v as f32)
            .into_shape_with_order((samples, pod_rank, n_z))
            .expect("N × (r_U n_z) rows"))
    }
}

/// The resumable chunks of an unfinished data set (`out/partial/`): chunk `stem-S.npy` with its
/// checksummed record `stem-S.json` ([`ChunkStore`]).
struct Partial {
    store: ChunkStore,
    chunk: usize,
    /// Stop with an error after this many newly computed chunks (tests).
    stop_after: Option<usize>,
    computed: usize,
}

impl Partial {
    /// Opens `out/partial/`, clearing chunks made with other settings.
    fn open(
        out: &Path,
        manifest: &ControlManifest,
        chunk: usize,
        stop_after: Option<usize>,
    ) -> Result<Self> {
        let dir = out.join("partial");
        let settings = dir.join("settings.json");
        let same = std::fs::read_to_string(&settings)
            .ok()
            .and_then(|t| serde_json::from_str::<ControlManifest>(&t).ok())
            .is_some_and(|m| m.same_settings(manifest));
        if !same {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let text = serde_json::to_string_pretty(manifest).expect("serializable");
            write_atomic(&settings, |w| w.write_all(text.as_bytes()))?;
        }
        Ok(Partial {
            store: ChunkStore::open(&dir)?,
            chunk: chunk.max(1),
            stop_after,
            computed: 0,
        })
    }

    /// Chunk `start..start + rows` of `stem`, `rows × width`, when stored and verified.
    fn stored(&self, stem: &str, start: usize, rows: usize, width: usize) -> Option<Array2<f64>> {
        match self.store.load::<Chunk>(&format!("{stem}-{start}.json")) {
            Stored::Verified((_, bytes)) => Array2::<f64>::read_npy(&bytes.get("rows")?[..])
                .ok()
                .filter(|a| a.dim() == (rows, width)),
            Stored::Missing | Stored::Corrupt => None,
        }
    }

    /// The rows f(0), …, f(n − 1) (each of `width` values), chunk by chunk: a chunk already on
    /// disk (from an interrupted run) is read, any other is computed in parallel and written.
    fn rows(
        &mut self,
        stem: &str,
        n: usize,
        width: usize,
        bar: &ProgressBar,
        f: impl Fn(usize) -> Result<Vec<f64>> + Sync,
    ) -> Result<Array2<f64>> {
        let mut all = Array2::<f64>::zeros((n, width));
        for (start, end) in ChunkStore::ranges(0, n, self.chunk) {
            let block = match self.stored(stem, start, end - start, width) {
                Some(block) => {
                    bar.inc(block.nrows() as u64);
                    block
                }
                None => self.compute(stem, (start, end), width, bar, &f)?,
            };
            all.slice_mut(ndarray::s![start..end, ..]).assign(&block);
        }
        Ok(all)
    }

    /// Computes chunk `start..end` in parallel and stores it (rows, then record).
    fn compute(
        &mut self,
        stem: &str,
        (start, end): (usize, usize),
        width: usize,
        bar: &ProgressBar,
        f: &(impl Fn(usize) -> Result<Vec<f64>> + Sync),
    ) -> Result<Array2<f64>> {
        if self.stop_after.is_some_and(|k| self.computed >= k) {
            return Err(Error::numerical("control data", "interrupted (test)"));
        }
        let rows: Vec<Vec<f64>> = (start..end)
            .into_par_iter()
            .map(|i| {
                let row = f(i)?;
                bar.inc(1);
                Ok(row)
            })
            .collect::<Result<_>>()?;
        let block = Array2::from_shape_fn((end - start, width), |(i, j)| rows[i][j]);
        let bytes = npy_bytes(&block).map_err(|e| Error::io(self.store.dir(), e))?;
        let files = self
            .store
            .write_files([("rows", format!("{stem}-{start}.npy"), bytes)])?;
        let record = Chunk { start, end, files };
        self.store
            .commit(&format!("{stem}-{start}.json"), &record)?;
        self.computed += 1;
        Ok(block)
    }

    /// Removes the chunks of a finished phase.
    fn remove(&self, stem: &str) {
        if let Ok(entries) = std::fs::read_dir(self.store.dir()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with(&format!("{stem}-")) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    /// Removes the folder once the data set is complete.
    fn finish(self) {
        let _ = std::fs::remove_dir_all(self.store.dir());
    }
}

/// Loads a control data folder, checking every array's shape against the manifest.
pub fn load_control(dir: &Path) -> Result<ControlDataset> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let manifest: ControlManifest = serde_json::from_str(&text).map_err(|e| {
        Error::parse(
            &path,
            format!("not a control data manifest (made by `dino generate --control`): {e}"),
        )
    })?;
    if manifest.format != CONTROL_DATA_FORMAT {
        return Err(Error::invalid(
            path.display().to_string(),
            "format",
            CONTROL_DATA_FORMAT,
            &manifest.format,
        ));
    }
    let (n, d_m, n_z, d_u, r) = (
        manifest.samples,
        manifest.parameter_dim,
        manifest.control_dim,
        manifest.state_dim,
        manifest.pod_rank,
    );
    let check = |name: &str, found: &[usize], expected: &[usize]| -> Result<()> {
        if found != expected {
            return Err(Error::invalid(
                dir.join(name).display().to_string(),
                name,
                format!("shape {expected:?} (as in manifest.json)"),
                format!("{found:?}"),
            ));
        }
        Ok(())
    };
    let file = |name: &str| -> PathBuf { dir.join(name) };
    let m: Array2<f64> = read_npy(&file("m.npy"), "a 2-D float64 array")?;
    check("m.npy", m.shape(), &[n, d_m])?;
    let z: Array2<f64> = read_npy(&file("z.npy"), "a 2-D float64 array")?;
    check("z.npy", z.shape(), &[n, n_z])?;
    let u: Array2<f64> = read_npy(&file("u.npy"), "a 2-D float64 array")?;
    check("u.npy", u.shape(), &[n, d_u])?;
    let pod_basis: Array2<f64> = read_npy(&file("pod_basis.npy"), "a 2-D float64 array")?;
    check("pod_basis.npy", pod_basis.shape(), &[d_u, r])?;
    let control_jacobian: Array3<f32> =
        read_npy(&file("control_jacobian.npy"), "a 3-D float32 array")?;
    check(
        "control_jacobian.npy",
        control_jacobian.shape(),
        &[n, r, n_z],
    )?;
    Ok(ControlDataset {
        manifest,
        m,
        z,
        u,
        pod_basis,
        control_jacobian,
    })
}
