//! Problem files: the TOML description of a PDE problem (mesh, PDE, observations, prior, noise,
//! control and QoI). See `problems/poisson.toml` for the format.
//!
//! Reading a problem goes spec → validate → build:
//! - [`spec`]: the file's sections as serde types (unknown keys and wrong types are errors
//!   naming the file and the key);
//! - `validate`: value checks, each error naming the field's dotted path;
//! - `build`: the mesh, the PDE model, the prior and the control problem of a validated spec.

mod build;
pub mod spec;
mod validate;

use std::path::{Path, PathBuf};

pub use spec::*;

use crate::error::{Error, Result};
use crate::fem::Mesh;

/// A validated problem: its spec, where it came from, and the mesh size in force.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The file it was read from.
    pub path: PathBuf,
    /// The parsed, validated contents.
    pub spec: ProblemSpec,
}

impl Problem {
    /// Reads and validates a problem file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parses and validates problem-file text; `path` names it in errors.
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let spec: ProblemSpec = toml::from_str(text)
            .map_err(|e| Error::parse(path, format!("invalid problem file: {e}")))?;
        let problem = Problem {
            path: path.to_path_buf(),
            spec,
        };
        problem.validate()?;
        Ok(problem)
    }

    /// The same problem on an `n × n` mesh.
    pub fn with_mesh(mut self, n: i64) -> Result<Self> {
        self.spec.mesh.n = n;
        self.validate()?;
        Ok(self)
    }

    fn file(&self) -> String {
        self.path.display().to_string()
    }

    fn invalid(&self, field: &str, expected: &str, found: impl ToString) -> Error {
        Error::invalid(self.file(), field, expected, found)
    }

    /// A 64-bit FNV-1a hash of the problem as parsed (mesh override included), in hex: what a
    /// data set or surrogate records to recognize the problem it was made for.
    pub fn hash(&self) -> String {
        let canonical = serde_json::to_string(&self.spec).expect("problem specs serialize");
        format!(
            "{:016x}",
            crate::io::checksum::fnv1a64(canonical.as_bytes())
        )
    }

    /// The relative noise level of `[noise]`; an error when the file has none.
    pub fn noise_relative(&self) -> Result<f64> {
        self.spec
            .noise
            .as_ref()
            .map(|n| n.relative)
            .ok_or_else(|| self.invalid("noise", "a [noise] section (relative = …)", "none"))
    }

    /// Cells per side.
    pub fn mesh_size(&self) -> usize {
        self.spec.mesh.n as usize
    }

    /// The mesh.
    pub fn mesh(&self) -> Mesh {
        Mesh::unit_square(self.mesh_size())
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
