//! Inputs every workflow reads the same way: a problem file (with an optional mesh override) and
//! data folders checked against it.

use std::path::{Path, PathBuf};

use crate::data::{load, Dataset};
use crate::error::{Error, Result};
use crate::problem::Problem;
use crate::store::check_made_for;

/// Reads a problem file, with the mesh size overridden by `mesh`.
pub fn load_problem(path: &Path, mesh: Option<i64>) -> Result<Problem> {
    let problem = Problem::load(path)?;
    match mesh {
        Some(n) => problem.with_mesh(n).map_err(|_| {
            Error::invalid("command line", "--mesh", "an integer between 1 and 4096", n)
        }),
        None => Ok(problem),
    }
}

/// Loads data folders and refuses data made for another problem (hash of file + mesh).
pub fn load_data_for(problem: &Problem, dirs: &[PathBuf]) -> Result<Dataset> {
    let data = load(dirs)?;
    check_made_for(
        &dirs[0].join("manifest.json"),
        "problem.hash",
        &data.manifest.problem.hash,
        &problem.hash(),
        &problem.path,
    )?;
    Ok(data)
}
