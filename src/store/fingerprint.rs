//! Fingerprints of settings: a stable 64-bit hash ([`crate::io::checksum::hex`]) of the canonical
//! JSON of a value (object keys sorted) or of raw bytes, and the comparison of two settings
//! values that names the first field that differs.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::io::checksum;

/// A stable hash of settings or bytes (16 hex digits); serialized as its string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of raw bytes.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Fingerprint(checksum::hex(bytes))
    }

    /// The fingerprint of a value's canonical JSON (keys sorted at every level), so it does not
    /// depend on field order or on how the value was built.
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Self {
        let canonical = canonical(to_value(value));
        Self::of_bytes(canonical.to_string().as_bytes())
    }

    /// The 16 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Ok when `recorded` (read from `file`) equals this one, else an error naming the file and
    /// `what` the fingerprint covers.
    pub fn check(&self, recorded: &Fingerprint, file: &Path, what: &str) -> Result<()> {
        if self == recorded {
            return Ok(());
        }
        Err(Error::invalid(
            file.display().to_string(),
            what,
            format!("fingerprint {} (this run's settings)", self.0),
            format!("{} (made with other settings)", recorded.0),
        ))
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn to_value<T: Serialize + ?Sized>(value: &T) -> Value {
    serde_json::to_value(value).expect("settings serialize to JSON")
}

/// The value with the keys of every object sorted.
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// The fields where two settings values differ, as (dotted path, expected, found), in key order.
pub fn differences<T: Serialize + ?Sized>(expected: &T, found: &T) -> Vec<(String, Value, Value)> {
    let mut out = Vec::new();
    diff("", &to_value(expected), &to_value(found), &mut out);
    out
}

fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<(String, Value, Value)>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let (va, vb) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                diff(&p, va, vb, out);
            }
        }
        _ if a != b => out.push((path.to_string(), a.clone(), b.clone())),
        _ => {}
    }
}

/// Ok when the settings recorded in `file` (`found`) equal this run's (`expected`), else an error
/// naming the file, the first field that differs and both values.
pub fn check_same_settings<T: Serialize + ?Sized>(
    expected: &T,
    found: &T,
    file: &Path,
) -> Result<()> {
    match differences(expected, found).into_iter().next() {
        None => Ok(()),
        Some((field, want, have)) => Err(Error::invalid(
            file.display().to_string(),
            field,
            format!("{want} (the settings of this command; use another folder for other settings)"),
            have.to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Settings {
        seed: u64,
        rank: usize,
        inner: Inner,
    }
    #[derive(Serialize)]
    struct Inner {
        tol: f64,
    }

    #[test]
    fn stable_and_sensitive() {
        let a = Settings {
            seed: 1,
            rank: 4,
            inner: Inner { tol: 1e-8 },
        };
        let b = Settings {
            seed: 1,
            rank: 4,
            inner: Inner { tol: 1e-9 },
        };
        assert_eq!(Fingerprint::of(&a), Fingerprint::of(&a));
        assert_ne!(Fingerprint::of(&a), Fingerprint::of(&b));
        // field order does not matter
        let x = serde_json::json!({"a": 1, "b": 2});
        let y: Value = serde_json::from_str(r#"{"b": 2, "a": 1}"#).unwrap();
        assert_eq!(Fingerprint::of(&x), Fingerprint::of(&y));
        assert_eq!(Fingerprint::of_bytes(b"a").as_str().len(), 16);
    }

    #[test]
    fn mismatch_names_file_and_field() {
        let a = Settings {
            seed: 1,
            rank: 4,
            inner: Inner { tol: 1e-8 },
        };
        let b = Settings {
            seed: 2,
            rank: 4,
            inner: Inner { tol: 1e-9 },
        };
        let file = Path::new("run/state.json");
        let err = check_same_settings(&a, &b, file).unwrap_err().to_string();
        assert!(err.contains("run/state.json"), "{err}");
        assert!(err.contains("inner.tol"), "{err}");
        assert!(check_same_settings(&a, &a, file).is_ok());
        let fa = Fingerprint::of(&a);
        let err = fa
            .check(&Fingerprint::of(&b), file, "settings")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("run/state.json") && err.contains("settings"),
            "{err}"
        );
        assert!(fa.check(&fa.clone(), file, "settings").is_ok());
    }
}
