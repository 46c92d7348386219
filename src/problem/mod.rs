//! Problem files: the TOML description of a PDE problem (mesh, PDE, observations, prior, noise,
//! control and QoI). See `problems/poisson.toml` for the format.
//!
//! Reading a problem goes spec → validate → build:
//! - [`spec`]: the file's sections as serde types (unknown keys and wrong types are errors
//!   naming the file and the key);
//! - `validate`: value checks, each error naming the field's dotted path;
//! - `build`: the mesh, the PDE model, the prior and the control problem of a validated spec.

mod build;
pub mod observed;
pub mod spec;
mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use observed::ObservedData;
pub use spec::*;

use crate::error::{Error, Result};
use crate::fem::Mesh;
use crate::misfit::NoiseCovariance;

/// A validated problem: its spec, where it came from, and what its files hold (the mesh, the
/// observed data and the noise covariance), read once when it is loaded.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The file it was read from.
    pub path: PathBuf,
    /// The parsed, validated contents.
    pub spec: ProblemSpec,
    mesh: Arc<Mesh>,
    /// Checksum of the `[mesh] file`, when there is one.
    mesh_checksum: Option<String>,
    observed: Option<Arc<ObservedData>>,
    /// Γ of `[noise] covariance`, when given.
    covariance: Option<Arc<NoiseCovariance>>,
}

/// How the problem defines the noise covariance Γ of its data.
#[derive(Debug, Clone)]
pub enum NoiseModel {
    /// σ = relative · max_k |q_k(m_true)|: for synthetic data only.
    Relative(f64),
    /// A fixed Γ (`[noise] std`, a `std` column, or `[noise] covariance`).
    Fixed(NoiseCovariance),
}

impl Problem {
    /// Reads and validates a problem file and the files it names.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parses and validates problem-file text; `path` names it in errors and is the folder that
    /// relative file names are resolved against.
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let spec: ProblemSpec = toml::from_str(text)
            .map_err(|e| Error::parse(path, format!("invalid problem file: {e}")))?;
        let mut problem = Problem {
            path: path.to_path_buf(),
            spec,
            mesh: Arc::new(Mesh::unit_square(1)),
            mesh_checksum: None,
            observed: None,
            covariance: None,
        };
        problem.read_files()?;
        problem.validate()?;
        Ok(problem)
    }

    /// The same problem on the structured `n × n` mesh; an error for a problem whose mesh is a
    /// file.
    pub fn with_mesh(mut self, n: i64) -> Result<Self> {
        if let Some(file) = &self.spec.mesh.file {
            return Err(Error::invalid(
                self.file(),
                "--mesh",
                "no mesh size: the problem's mesh is the file it names",
                format!("--mesh {n} with [mesh] file = \"{file}\""),
            ));
        }
        self.spec.mesh.n = Some(n);
        self.read_files()?;
        self.validate()?;
        Ok(self)
    }

    /// A path named in the problem file, relative to the problem file's folder.
    pub fn resolve(&self, name: &str) -> PathBuf {
        self.path.parent().unwrap_or(Path::new(".")).join(name)
    }

    /// Reads the mesh, the observed data and the noise covariance the spec names.
    fn read_files(&mut self) -> Result<()> {
        let mesh = &self.spec.mesh;
        match (mesh.n, &mesh.file) {
            (Some(n), None) => {
                if !(1..=4096).contains(&n) {
                    return Err(self.invalid("mesh.n", "an integer between 1 and 4096", n));
                }
                self.mesh = Arc::new(Mesh::unit_square(n as usize));
                self.mesh_checksum = None;
            }
            (None, Some(file)) => {
                let path = self.resolve(file);
                let (mesh, checksum) = crate::fem::mesh_file::read_mesh(&path)?;
                self.mesh = Arc::new(mesh);
                self.mesh_checksum = Some(checksum);
            }
            _ => {
                return Err(self.invalid(
                    "mesh",
                    "either `n` (cells per side of the unit square) or `file` (a Gmsh mesh)",
                    "both or neither",
                ))
            }
        }
        self.observed = match self
            .spec
            .observations
            .as_ref()
            .and_then(|o| o.data.as_ref())
        {
            Some(file) => Some(Arc::new(ObservedData::read(&self.resolve(file))?)),
            None => None,
        };
        self.covariance = match self.spec.noise.as_ref().and_then(|n| n.covariance.as_ref()) {
            Some(_) if self.is_external() => {
                return Err(self.invalid(
                    "noise.covariance",
                    "`relative` or `std` for an external (UM-Bridge) model (a full covariance \
                     needs d_Q, known only from the server)",
                    "a covariance file",
                ))
            }
            Some(file) => {
                let path = self.resolve(file);
                let d_q = self.observation_points_checked()?.len();
                let c = crate::io::npy::read_matrix(&path, d_q, "noise.covariance")?;
                let noise = NoiseCovariance::dense(c).map_err(|e| match e {
                    Error::Invalid {
                        field,
                        expected,
                        found,
                        ..
                    } => Error::Invalid {
                        file: path.display().to_string(),
                        field,
                        expected,
                        found,
                    },
                    other => other,
                })?;
                Some(Arc::new(noise))
            }
            None => None,
        };
        Ok(())
    }

    fn file(&self) -> String {
        self.path.display().to_string()
    }

    fn invalid(&self, field: &str, expected: &str, found: impl ToString) -> Error {
        Error::invalid(self.file(), field, expected, found)
    }

    /// A 64-bit FNV-1a hash of the problem as parsed (mesh override included), in hex: what a
    /// data set or surrogate records to recognize the problem it was made for. It covers what
    /// defines the map m ↦ q and its prior: the mesh (a mesh file's contents), the PDE, the
    /// observation points (those of a data file, not its values: a surrogate predicts q at the
    /// points, whatever was measured there), the prior, the control and QoI. The noise model and
    /// the description are left out, so a surrogate serves the same problem under any noise.
    pub fn hash(&self) -> String {
        let mut spec = self.spec.clone();
        spec.noise = None;
        spec.description.clear();
        let mut canonical = serde_json::to_string(&spec).expect("problem specs serialize");
        if let Some(c) = &self.mesh_checksum {
            canonical.push_str(&format!(" mesh={c}"));
        }
        if let Some(d) = &self.observed {
            let bytes: Vec<u8> = d
                .points
                .iter()
                .flatten()
                .flat_map(|c| c.to_le_bytes())
                .collect();
            canonical.push_str(&format!(" points={}", crate::io::checksum::hex(&bytes)));
        }
        format!(
            "{:016x}",
            crate::io::checksum::fnv1a64(canonical.as_bytes())
        )
    }

    /// The measurements of `[observations] data`, when the problem has them.
    pub fn observed(&self) -> Option<&ObservedData> {
        self.observed.as_deref()
    }

    /// The noise model of the problem's data (`relative`: only for synthetic truth). With
    /// observed data and no `[noise]` other than a `std` column, that column.
    pub fn noise_model(&self) -> Result<NoiseModel> {
        let noise = self.spec.noise.clone().unwrap_or_default();
        let column = self.observed().and_then(|d| d.std.clone());
        let given = [
            noise.relative.is_some(),
            noise.std.is_some(),
            noise.covariance.is_some(),
            column.is_some(),
        ];
        if given.iter().filter(|&&g| g).count() > 1 {
            return Err(self.invalid(
                "noise",
                "one noise model: `relative`, `std`, `covariance`, or a `std` column in the data file",
                "more than one",
            ));
        }
        if let Some(r) = noise.relative {
            return Ok(NoiseModel::Relative(r));
        }
        if let Some(s) = noise.std {
            return Ok(NoiseModel::Fixed(NoiseCovariance::isotropic(s * s)?));
        }
        if let Some(c) = &self.covariance {
            return Ok(NoiseModel::Fixed((**c).clone()));
        }
        if let Some(std) = column {
            return Ok(NoiseModel::Fixed(NoiseCovariance::diagonal(
                std.iter().map(|s| s * s).collect(),
            )?));
        }
        Err(self.invalid(
            "noise",
            "a [noise] section (relative = …, std = … or covariance = \"C.npy\") or a `std` column in the data file",
            "none",
        ))
    }

    /// The relative noise level of `[noise]`; an error when the file has none.
    pub fn noise_relative(&self) -> Result<f64> {
        self.spec
            .noise
            .as_ref()
            .and_then(|n| n.relative)
            .ok_or_else(|| self.invalid("noise", "a [noise] section with relative = …", "none"))
    }

    /// Cells per side of the structured mesh; 0 for a mesh read from a file.
    pub fn mesh_size(&self) -> usize {
        self.mesh
            .structured_size()
            .filter(|_| self.spec.mesh.file.is_none())
            .unwrap_or(0)
    }

    /// What the mesh is, for reports: `64×64` or the file name.
    pub fn mesh_label(&self) -> String {
        match &self.spec.mesh.file {
            Some(f) => format!("{f} ({} vertices)", self.mesh.num_vertices()),
            None => format!("{n}×{n}", n = self.mesh_size()),
        }
    }

    /// Whether the forward model is an external (UM-Bridge) model, whose outputs are the
    /// observations (no observation points).
    pub fn is_external(&self) -> bool {
        matches!(self.spec.pde, PdeSpec::Umbridge { .. })
    }

    /// The mesh.
    pub fn mesh(&self) -> Mesh {
        (*self.mesh).clone()
    }

    /// The mesh, shared.
    pub fn mesh_ref(&self) -> &Mesh {
        &self.mesh
    }

    /// Observation points, x fastest for a grid.
    pub fn observation_points(&self) -> Vec<[f64; 2]> {
        self.observation_points_checked()
            .expect("validated when loaded")
    }

    /// Attributes a validation error raised while building to this file.
    fn rename(&self, e: Error) -> Error {
        match e {
            Error::Invalid {
                field,
                expected,
                found,
                ..
            } => Error::Invalid {
                file: self.file(),
                field,
                expected,
                found,
            },
            other => other,
        }
    }
}
