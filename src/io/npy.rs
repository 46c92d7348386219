//! `.npy` files that numpy reads: 1-D nodal fields and 2-D matrices, float64, C order.

use std::path::Path;

use ndarray::{Array1, Array2};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};

use super::atomic::write_atomic;
use crate::error::{check_finite_vector, Error, Result};

/// Reads a 1-D float64 array of length `expected_len` with finite entries; `field` names the
/// argument in error messages.
pub fn read_vector(path: impl AsRef<Path>, expected_len: usize, field: &str) -> Result<Vec<f64>> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let array = Array1::<f64>::read_npy(std::io::BufReader::new(file)).map_err(|e| {
        Error::invalid(
            path.display().to_string(),
            field,
            format!("a 1-D float64 .npy array of length {expected_len}"),
            format!("a file that does not match ({e})"),
        )
    })?;
    let values = array.to_vec();
    check_finite_vector(&values, expected_len, &path.display().to_string(), field)?;
    Ok(values)
}

/// Reads a 2-D float64 array with `rows` rows and finite entries; `field` names the argument
/// in error messages.
pub fn read_matrix(path: impl AsRef<Path>, rows: usize, field: &str) -> Result<Array2<f64>> {
    let path = path.as_ref();
    let expected = format!("a 2-D float64 .npy array with {rows} rows");
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let array = Array2::<f64>::read_npy(std::io::BufReader::new(file)).map_err(|e| {
        Error::invalid(
            path.display().to_string(),
            field,
            &expected,
            format!("a file that does not match ({e})"),
        )
    })?;
    if array.nrows() != rows || array.iter().any(|v| !v.is_finite()) {
        return Err(Error::invalid(
            path.display().to_string(),
            field,
            expected,
            format!("{:?} (or non-finite entries)", array.dim()),
        ));
    }
    Ok(array)
}

/// Writes a 1-D float64 array atomically.
pub fn write_vector(path: impl AsRef<Path>, values: &[f64]) -> Result<()> {
    let array = Array1::from(values.to_vec());
    write_atomic(path, |w| array.write_npy(w).map_err(std::io::Error::other))
}

/// Writes a 2-D float64 array (C order) atomically.
pub fn write_matrix(path: impl AsRef<Path>, matrix: &Array2<f64>) -> Result<()> {
    write_atomic(path, |w| matrix.write_npy(w).map_err(std::io::Error::other))
}
