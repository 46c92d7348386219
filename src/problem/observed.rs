//! Observed data from a CSV file: one row per measurement, header `x,y,value` and optionally
//! `std` (columns in any order; other columns, e.g. a well name, are ignored).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Measurements d_k of the state at points x_k, with an optional per-datum σ_k.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedData {
    /// The file read.
    pub file: PathBuf,
    /// x_k, in file order: the problem's observation points.
    pub points: Vec<[f64; 2]>,
    /// d_k.
    pub values: Vec<f64>,
    /// σ_k of the `std` column, when the file has one.
    pub std: Option<Vec<f64>>,
    /// Checksum of the file's bytes ([`crate::io::checksum::hex`]).
    pub checksum: String,
}

impl ObservedData {
    /// Reads a measurement CSV. Errors name the file, the line and the column: a missing
    /// column, a value that is no finite number, a σ ≤ 0, a row of the wrong length, no rows.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let bad =
            |line: u64, message: String| Error::parse(path, format!("line {line}: {message}"));
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_reader(bytes.as_slice());
        let header = reader
            .headers()
            .map_err(|e| bad(1, format!("unreadable header: {e}")))?
            .clone();
        let column = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
        let required = |name: &str| {
            column(name).ok_or_else(|| {
                bad(
                    1,
                    format!(
                        "no column `{name}` in the header (expected the columns x,y,value and \
                         optionally std; found {})",
                        header.iter().collect::<Vec<_>>().join(",")
                    ),
                )
            })
        };
        let (cx, cy, cv) = (required("x")?, required("y")?, required("value")?);
        let cs = column("std");
        let mut data = ObservedData {
            file: path.to_path_buf(),
            points: Vec::new(),
            values: Vec::new(),
            std: cs.map(|_| Vec::new()),
            checksum: crate::io::checksum::hex(&bytes),
        };
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map_or(0, |p| p.line());
                bad(line, format!("malformed row: {e}"))
            })?;
            let line = record.position().map_or(0, |p| p.line());
            let number = |c: usize, name: &str| -> Result<f64> {
                let text = record.get(c).unwrap_or("");
                match text.parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(v),
                    _ => Err(bad(
                        line,
                        format!("column `{name}`: expected a finite number, found \"{text}\""),
                    )),
                }
            };
            data.points.push([number(cx, "x")?, number(cy, "y")?]);
            data.values.push(number(cv, "value")?);
            if let (Some(c), Some(std)) = (cs, data.std.as_mut()) {
                let s = number(c, "std")?;
                if s <= 0.0 {
                    return Err(bad(
                        line,
                        format!("column `std`: expected a positive standard deviation, found {s}"),
                    ));
                }
                std.push(s);
            }
        }
        if data.points.is_empty() {
            return Err(Error::parse(path, "no data rows after the header"));
        }
        Ok(data)
    }

    /// Writes `x,y,value[,std]` rows (the format [`ObservedData::read`] reads).
    pub fn write_csv(
        path: &Path,
        points: &[[f64; 2]],
        values: &[f64],
        std: Option<&[f64]>,
    ) -> Result<()> {
        let mut text = String::from(if std.is_some() {
            "x,y,value,std\n"
        } else {
            "x,y,value\n"
        });
        for (k, (p, v)) in points.iter().zip(values).enumerate() {
            text.push_str(&format!("{:?},{:?},{:?}", p[0], p[1], v));
            if let Some(s) = std {
                text.push_str(&format!(",{:?}", s[k]));
            }
            text.push('\n');
        }
        crate::io::atomic::write_atomic(path, |w| std::io::Write::write_all(w, text.as_bytes()))
    }
}

/// `residuals.csv`: per datum x, y, d_k, q_k = d_k − r_k, the residual r_k = d_k − q_k and
/// the normalized residual z_k = (Γ^{-1/2} r)_k.
pub fn write_residuals_csv(
    path: &Path,
    points: &[[f64; 2]],
    data: &[f64],
    residual: &[f64],
    normalized: &[f64],
) -> Result<()> {
    if points.len() != data.len() {
        // outputs of an external model: no points, one row per output
        let mut text = String::from("output,data,q,residual,normalized_residual\n");
        for (i, ((d, r), z)) in data.iter().zip(residual).zip(normalized).enumerate() {
            text.push_str(&format!("{i},{d:?},{:?},{r:?},{z:?}\n", d - r));
        }
        return crate::io::atomic::write_atomic(path, |w| {
            std::io::Write::write_all(w, text.as_bytes())
        });
    }
    let mut text = String::from("x,y,data,q,residual,normalized_residual\n");
    for (((p, d), r), z) in points.iter().zip(data).zip(residual).zip(normalized) {
        text.push_str(&format!(
            "{:?},{:?},{d:?},{:?},{r:?},{z:?}\n",
            p[0],
            p[1],
            d - r
        ));
    }
    crate::io::atomic::write_atomic(path, |w| std::io::Write::write_all(w, text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<ObservedData> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wells.csv");
        std::fs::write(&path, text).unwrap();
        ObservedData::read(&path)
    }

    #[test]
    fn reads_columns_in_any_order_and_ignores_extra_ones() {
        let d =
            read("name, value ,y,x,std\nw1,0.5,0.2,0.1,0.01\n# a comment\nw2,0.25,0.4,0.3,0.02\n")
                .unwrap();
        assert_eq!(d.points, vec![[0.1, 0.2], [0.3, 0.4]]);
        assert_eq!(d.values, vec![0.5, 0.25]);
        assert_eq!(d.std, Some(vec![0.01, 0.02]));
        let d = read("x,y,value\n0.1,0.2,3\n").unwrap();
        assert_eq!(d.std, None);
    }

    #[test]
    fn bad_files_name_the_line_and_column() {
        let msg = |t: &str| read(t).unwrap_err().to_string();
        assert!(msg("x,y\n0.1,0.2\n").contains("no column `value`"));
        assert!(msg("x,y,value\n0.1,0.2,1\n0.1,0.2,nan\n").contains("line 3: column `value`"));
        assert!(msg("x,y,value,std\n0.1,0.2,1,0\n").contains("positive standard deviation"));
        assert!(msg("x,y,value\n0.1,0.2\n").contains("line 2"));
        assert!(msg("x,y,value\n").contains("no data rows"));
    }
}
