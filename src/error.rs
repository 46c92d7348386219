//! The one user-facing error type.
//!
//! Every failure a user can cause (a bad problem file, a malformed `.npy`, an impossible
//! parameter) becomes an [`Error`] that names the file and the field and says what was expected.
//! `main` maps every `Error` to exit code 2; a panic is always a bug in dino.

use std::path::Path;

/// A failure caused by user input or by a numerical method that could not finish.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value that is present but not acceptable.
    #[error("{file}: field `{field}`: expected {expected}, found {found}")]
    Invalid {
        file: String,
        field: String,
        expected: String,
        found: String,
    },
    /// A file that could not be parsed at all (malformed TOML, not an .npy file, ...).
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    /// Reading or writing a file failed.
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A numerical method failed (a factorization broke down, Newton did not converge, ...).
    #[error("{what}: {message}")]
    Numerical { what: String, message: String },
    /// A network peer (an UM-Bridge model server) that failed, refused or did not answer.
    #[error("{peer}: {message}")]
    Peer { peer: String, message: String },
}

/// Shorthand for results in dino.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A value `found` in `field` of `file` that is not what was `expected`.
    pub fn invalid(
        file: impl AsRef<str>,
        field: impl Into<String>,
        expected: impl Into<String>,
        found: impl ToString,
    ) -> Self {
        Error::Invalid {
            file: file.as_ref().to_string(),
            field: field.into(),
            expected: expected.into(),
            found: found.to_string(),
        }
    }

    /// A file that could not be parsed.
    pub fn parse(file: impl AsRef<Path>, message: impl ToString) -> Self {
        Error::Parse {
            file: file.as_ref().display().to_string(),
            message: message.to_string(),
        }
    }

    /// An I/O failure on `file`.
    pub fn io(file: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            file: file.as_ref().display().to_string(),
            source,
        }
    }

    /// A numerical method `what` that failed.
    pub fn peer(peer: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Peer {
            peer: peer.into(),
            message: message.into(),
        }
    }

    pub fn numerical(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Numerical {
            what: what.into(),
            message: message.into(),
        }
    }
}

/// Checks that `values` has length `expected_len` and holds only finite numbers.
///
/// `file` and `field` name the source of the vector in the error message.
pub fn check_finite_vector(
    values: &[f64],
    expected_len: usize,
    file: &str,
    field: &str,
) -> Result<()> {
    if values.len() != expected_len {
        return Err(Error::invalid(
            file,
            field,
            format!("a vector of length {expected_len}"),
            format!("length {}", values.len()),
        ));
    }
    if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(Error::invalid(
            file,
            field,
            "finite numbers",
            format!("{v} at index {i}"),
        ));
    }
    Ok(())
}
