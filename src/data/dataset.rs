//! Loading data folders: checksums verified, shards joined, failed samples reported and left out.

use std::path::{Path, PathBuf};

use ndarray::{concatenate, Array2, Array3, Axis};
use ndarray_npy::ReadNpyExt;

use super::manifest::{ChunkRecord, Failure, Manifest};
use crate::error::{Error, Result};
use crate::io::checksum;

/// A loaded data set: the successful samples in sample order.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The manifest of the first folder (problem, seed, layout).
    pub manifest: Manifest,
    /// Parameters, (N, d_M).
    pub m: Array2<f64>,
    /// Observables, (N, d_Q).
    pub q: Array2<f64>,
    /// Jacobians (N, d_Q, d_M or r), when stored.
    pub jacobian: Option<Array3<f32>>,
    /// Global index of each row.
    pub samples: Vec<usize>,
    /// Samples whose solve failed (not in the arrays).
    pub failures: Vec<Failure>,
}

impl Dataset {
    /// Number of samples loaded.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when no sample was loaded.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The first `n` samples (all of them when there are fewer).
    pub fn head(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            manifest: self.manifest.clone(),
            m: self.m.slice(ndarray::s![..n, ..]).to_owned(),
            q: self.q.slice(ndarray::s![..n, ..]).to_owned(),
            jacobian: self
                .jacobian
                .as_ref()
                .map(|j| j.slice(ndarray::s![..n, .., ..]).to_owned()),
            samples: self.samples[..n].to_vec(),
            failures: self.failures.clone(),
        }
    }
}

/// The chunks of several folders of one data set, checked to belong together, sorted, disjoint.
fn collect(dirs: &[PathBuf]) -> Result<(Manifest, Vec<(PathBuf, ChunkRecord)>)> {
    let first_dir = dirs.first().ok_or_else(|| {
        Error::invalid(
            "command line",
            "data folders",
            "at least one folder",
            "none",
        )
    })?;
    let first = Manifest::read(first_dir)?;
    let mut chunks = Vec::new();
    for dir in dirs {
        let manifest = Manifest::read(dir)?;
        let mut other = manifest.clone();
        // shards differ in their slice only
        other.start = first.start;
        other.end = first.end;
        if let Some(what) = first.same_job(&other) {
            return Err(Error::invalid(
                dir.join("manifest.json").display().to_string(),
                what,
                format!("the same {what} as {}", first_dir.display()),
                "a different one: these folders are not shards of one data set",
            ));
        }
        chunks.extend(manifest.chunks.into_iter().map(|c| (dir.clone(), c)));
    }
    chunks.sort_by_key(|(_, c)| c.start);
    let mut next = chunks.first().map_or(0, |(_, c)| c.start);
    for (dir, c) in &chunks {
        if c.start < next {
            return Err(Error::invalid(
                dir.display().to_string(),
                "chunks",
                "disjoint sample ranges",
                format!("samples {}..{} twice", c.start, next),
            ));
        }
        if c.start > next {
            return Err(Error::invalid(
                dir.display().to_string(),
                "chunks",
                "consecutive sample ranges",
                format!("samples {next}..{} missing (an unfinished run or shard: run it again to complete it)", c.start),
            ));
        }
        next = c.end;
    }
    Ok((first, chunks))
}

/// Reads one chunk file after checking its checksum.
fn read_verified(dir: &Path, name: &str, expected: &str) -> Result<Vec<u8>> {
    let path = dir.join(name);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let found = checksum::hex(&bytes);
    if found != expected {
        return Err(Error::invalid(
            path.display().to_string(),
            "checksum",
            format!(
                "{expected} as recorded in the chunk record (the file is corrupted or was changed)"
            ),
            found,
        ));
    }
    Ok(bytes)
}

fn parse<A: ReadNpyExt>(dir: &Path, name: &str, bytes: &[u8]) -> Result<A> {
    A::read_npy(bytes)
        .map_err(|e| Error::parse(dir.join(name), format!("not the expected array: {e}")))
}

/// Loads the data set held in `dirs` (one folder, or the shard folders of one data set).
pub fn load(dirs: &[PathBuf]) -> Result<Dataset> {
    let (manifest, chunks) = collect(dirs)?;
    let (mut ms, mut qs, mut js, mut samples, mut failures) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (dir, c) in &chunks {
        let failed: Vec<usize> = c.failures.iter().map(|f| f.sample - c.start).collect();
        let keep: Vec<usize> = (0..c.end - c.start)
            .filter(|r| !failed.contains(r))
            .collect();
        for (key, file) in &c.files {
            let bytes = read_verified(dir, &file.name, &file.checksum)?;
            let expected: Vec<usize> = std::iter::once(c.end - c.start)
                .chain(
                    manifest
                        .arrays
                        .get(key)
                        .map(|a| a.shape.clone())
                        .unwrap_or_default(),
                )
                .collect();
            let check = |shape: &[usize]| -> Result<()> {
                if shape != expected.as_slice() {
                    return Err(Error::invalid(
                        dir.join(&file.name).display().to_string(),
                        key.as_str(),
                        format!("shape {expected:?} as in manifest.json"),
                        format!("{shape:?}"),
                    ));
                }
                Ok(())
            };
            match key.as_str() {
                "m" | "q" => {
                    let a = parse::<Array2<f64>>(dir, &file.name, &bytes)?;
                    check(a.shape())?;
                    let rows = a.select(Axis(0), &keep);
                    if key == "m" {
                        ms.push(rows)
                    } else {
                        qs.push(rows)
                    }
                }
                "J" => {
                    let a = parse::<Array3<f32>>(dir, &file.name, &bytes)?;
                    check(a.shape())?;
                    js.push(a.select(Axis(0), &keep))
                }
                other => {
                    return Err(Error::parse(
                        dir.join("manifest.json"),
                        format!("unknown array `{other}`"),
                    ))
                }
            }
        }
        samples.extend(keep.iter().map(|r| c.start + r));
        failures.extend(c.failures.iter().cloned());
    }
    let cat2 = |parts: Vec<Array2<f64>>, width: usize| -> Array2<f64> {
        if parts.is_empty() {
            Array2::zeros((0, width))
        } else {
            concatenate(Axis(0), &parts.iter().map(|a| a.view()).collect::<Vec<_>>())
                .expect("chunks share their width")
        }
    };
    let d_m = manifest.arrays["m"].shape[0];
    let d_q = manifest.arrays["q"].shape[0];
    let jacobian = (!js.is_empty()).then(|| {
        concatenate(Axis(0), &js.iter().map(|a| a.view()).collect::<Vec<_>>())
            .expect("chunks share their shape")
    });
    Ok(Dataset {
        m: cat2(ms, d_m),
        q: cat2(qs, d_q),
        jacobian,
        samples,
        failures,
        manifest,
    })
}

/// Joins the shard folders `dirs` into `out` (files copied, checksums verified, one manifest).
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<Manifest> {
    let (mut manifest, chunks) = collect(dirs)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    for (dir, c) in &chunks {
        for file in c.files.values() {
            let bytes = read_verified(dir, &file.name, &file.checksum)?;
            crate::io::write_atomic(out.join(&file.name), |w| w.write_all(&bytes))?;
        }
        let text = serde_json::to_string_pretty(c).expect("records serialize");
        crate::io::write_atomic(
            out.join(format!(
                "chunk_{}.json",
                super::manifest::chunk_stem(c.start, c.end)
            )),
            |w| w.write_all(text.as_bytes()),
        )?;
    }
    manifest.start = chunks.first().map_or(0, |(_, c)| c.start);
    manifest.end = chunks.last().map_or(0, |(_, c)| c.end);
    manifest.failures = chunks
        .iter()
        .flat_map(|(_, c)| c.failures.clone())
        .collect();
    let wall: f64 = chunks.iter().map(|(_, c)| c.wall_s).sum();
    let per_sample = |m: &Manifest| {
        m.cost
            .jacobian_solves
            .checked_div(m.cost.forward_solves)
            .unwrap_or(0)
    };
    let samples = manifest.end - manifest.start;
    manifest.cost.jacobian_solves = samples * per_sample(&manifest);
    manifest.cost.forward_solves = samples;
    manifest.cost.wall_s = wall;
    manifest.cost.samples_per_s = if wall > 0.0 {
        samples as f64 / wall
    } else {
        0.0
    };
    manifest.cost.solves_per_s = if wall > 0.0 {
        (manifest.cost.forward_solves + manifest.cost.jacobian_solves) as f64 / wall
    } else {
        0.0
    };
    manifest.chunks = chunks.into_iter().map(|(_, c)| c).collect();
    manifest.write(out)?;
    Ok(manifest)
}
