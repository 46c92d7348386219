//! "Was this file made for this problem?": a file records the hash of the problem it was made
//! for ([`crate::problem::Problem::hash`]: problem file + mesh); using it with another problem is
//! refused with an error naming the file, the field and both hashes.

use std::path::Path;

use crate::error::{Error, Result};

/// Ok when `recorded` (field `field` of `file`) equals `problem_hash`, the hash of the problem
/// read from `problem_file`; else an error naming the file and field.
pub fn check_made_for(
    file: &Path,
    field: &str,
    recorded: &str,
    problem_hash: &str,
    problem_file: &Path,
) -> Result<()> {
    if recorded == problem_hash {
        return Ok(());
    }
    Err(Error::invalid(
        file.display().to_string(),
        field,
        format!(
            "{problem_hash} (the problem {} with its mesh)",
            problem_file.display()
        ),
        recorded,
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_file_field_and_problem() {
        let (file, problem) = (
            std::path::Path::new("d/manifest.json"),
            std::path::Path::new("p.toml"),
        );
        assert!(super::check_made_for(file, "problem.hash", "ab", "ab", problem).is_ok());
        let err = super::check_made_for(file, "problem.hash", "ab", "cd", problem)
            .unwrap_err()
            .to_string();
        for part in ["d/manifest.json", "problem.hash", "ab", "cd", "p.toml"] {
            assert!(err.contains(part), "{part} in {err}");
        }
    }
}
