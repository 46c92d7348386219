//! An UM-Bridge client (protocol 1.0): any UM-Bridge model server — FEniCS, Firedrake, an
//! in-house code behind the `umbridge` Python package, another `dino serve` — as a
//! [`DifferentiableMap`] F: ℝ^{d_M} → ℝ^{d_Q}.
//!
//! Requests go round-robin over the given URLs (several instances of the model, or one UM-Bridge
//! load balancer). Each request has a timeout; a refused connection, a timeout or a 5xx answer is
//! retried with exponential backoff, then reported as an error naming the URL and the model.
//! A 4xx answer (the model refused the input) is not retried.
//!
//! The linearization at m holds the full Jacobian J (d_Q × d_M), computed once by d_Q Gradient
//! requests (rows Jᵀ e_k) or d_M ApplyJacobian requests (columns J e_j), whichever is fewer, so
//! that J v and Jᵀ w are local products afterwards.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ndarray::Array2;
use rayon::prelude::*;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::map::{DifferentiableMap, JacobianNeed, Linearization};

use super::Support;

/// Timeouts and retries of a client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientSettings {
    /// Per-request limit (connect, send, model time, receive).
    pub timeout: Duration,
    /// Retries after the first try, on transport errors and 5xx answers.
    pub retries: usize,
    /// Wait before the first retry; doubled before each further one.
    pub backoff: Duration,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            timeout: Duration::from_secs(600),
            retries: 3,
            backoff: Duration::from_millis(200),
        }
    }
}

/// One UM-Bridge model, served at one or more URLs.
pub struct UmBridgeModel {
    urls: Vec<String>,
    name: String,
    config: Value,
    agent: ureq::Agent,
    settings: ClientSettings,
    next: AtomicUsize,
    support: Support,
    input_size: usize,
    output_size: usize,
}

impl UmBridgeModel {
    /// Connects to model `name` at `urls` (sent `config` with every request): checks the
    /// protocol version, that the model exists and has one input and one output vector, and
    /// reads what it supports.
    pub fn connect(
        urls: &[String],
        name: &str,
        config: Value,
        settings: ClientSettings,
    ) -> Result<Self> {
        if urls.is_empty() {
            return Err(Error::invalid("pde", "url", "at least one URL", "none"));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(settings.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let mut model = UmBridgeModel {
            urls: urls
                .iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            name: name.to_string(),
            config,
            agent,
            settings,
            next: AtomicUsize::new(0),
            support: Support {
                evaluate: false,
                gradient: false,
                apply_jacobian: false,
                apply_hessian: false,
            },
            input_size: 0,
            output_size: 0,
        };
        for k in 0..model.urls.len() {
            let info = model.request(k, "GET", "/Info", None)?;
            let version = info.get("protocolVersion").and_then(Value::as_f64);
            if version != Some(1.0) {
                return Err(
                    model.peer_error(k, format!("protocol version {version:?}, expected 1.0"))
                );
            }
            let names: Vec<&str> = info
                .get("models")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if !names.contains(&name) {
                return Err(
                    model.peer_error(k, format!("no model `{name}`; the server has {names:?}"))
                );
            }
        }
        let body = json!({"name": name});
        let info = model.request(0, "POST", "/ModelInfo", Some(&body))?;
        let flag = |key: &str| info["support"][key].as_bool().unwrap_or(false);
        model.support = Support {
            evaluate: flag("Evaluate"),
            gradient: flag("Gradient"),
            apply_jacobian: flag("ApplyJacobian"),
            apply_hessian: flag("ApplyHessian"),
        };
        let sizes_body = json!({"name": name, "config": model.config});
        let sizes = |path: &str, key: &str| -> Result<usize> {
            let v = model.request(0, "POST", path, Some(&sizes_body))?;
            match v[key].as_array().map(|a| a.iter().filter_map(Value::as_u64).collect::<Vec<_>>()) {
                Some(s) if s.len() == 1 => Ok(s[0] as usize),
                other => Err(model.peer_error(
                    0,
                    format!("{path}: dino drives models of one input and one output vector, the model has sizes {other:?}"),
                )),
            }
        };
        let (input_size, output_size) = (
            sizes("/InputSizes", "inputSizes")?,
            sizes("/OutputSizes", "outputSizes")?,
        );
        if !model.support.evaluate {
            return Err(model.peer_error(0, "the model does not support Evaluate".into()));
        }
        model.input_size = input_size;
        model.output_size = output_size;
        Ok(model)
    }

    /// What the model supports.
    pub fn support(&self) -> Support {
        self.support
    }

    /// "UM-Bridge model `name` at URL", for errors.
    fn peer(&self, k: usize) -> String {
        format!("UM-Bridge model `{}` at {}", self.name, self.urls[k])
    }

    fn peer_error(&self, k: usize, message: String) -> Error {
        Error::peer(self.peer(k), message)
    }

    /// One request to URL `k` (retried on transport errors and 5xx), its answer as JSON.
    fn request(&self, k: usize, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let text = self.request_text(k, method, path, body)?;
        serde_json::from_str(&text).map_err(|_| {
            self.peer_error(
                k,
                format!(
                    "{path}: the answer is not JSON: {}",
                    text.chars().take(200).collect::<String>()
                ),
            )
        })
    }

    /// One request to URL `k`, retried on transport errors and 5xx: the text of a 2xx answer.
    fn request_text(
        &self,
        k: usize,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<String> {
        let url = format!("{}{path}", self.urls[k]);
        let mut wait = self.settings.backoff;
        let mut last = String::new();
        for attempt in 0..=self.settings.retries {
            if attempt > 0 {
                std::thread::sleep(wait);
                wait *= 2;
            }
            let sent = match (method, body) {
                ("GET", _) => self.agent.get(&url).call(),
                (_, Some(b)) => self
                    .agent
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .send(serde_json::to_string(b).expect("JSON values serialize")),
                (_, None) => self.agent.post(&url).send_empty(),
            };
            let mut response = match sent {
                Ok(r) => r,
                Err(e) => {
                    last = format!("{path}: {e}");
                    continue;
                }
            };
            let status = response.status().as_u16();
            let text = match response.body_mut().read_to_string() {
                Ok(t) => t,
                Err(e) => {
                    last = format!("{path}: reading the answer: {e}");
                    continue;
                }
            };
            let detail = || {
                serde_json::from_str::<Value>(&text)
                    .ok()
                    .as_ref()
                    .and_then(|v| v.get("error"))
                    .map(|e| {
                        format!(
                            "{} ({})",
                            e["message"].as_str().unwrap_or(""),
                            e["type"].as_str().unwrap_or("")
                        )
                    })
                    .unwrap_or_else(|| text.chars().take(200).collect())
            };
            if status >= 500 {
                last = format!("{path}: HTTP {status}: {}", detail());
                continue;
            }
            if status >= 400 {
                return Err(self.peer_error(k, format!("{path}: HTTP {status}: {}", detail())));
            }
            return Ok(text);
        }
        Err(self.peer_error(
            k,
            format!("{last} (after {} tries)", self.settings.retries + 1),
        ))
    }

    /// A model request at the next URL (round robin); the answer's `output` as a vector (`nested`:
    /// the first vector of a list of vectors, as Evaluate answers), of length `expected`.
    fn call(&self, path: &str, mut body: Value, nested: bool, expected: usize) -> Result<Vec<f64>> {
        let k = self.next.fetch_add(1, Ordering::Relaxed) % self.urls.len();
        body["name"] = json!(self.name);
        body["config"] = self.config.clone();
        let text = self.request_text(k, "POST", path, Some(&body))?;
        // typed, straight from the text (no JSON tree of 4,225 numbers)
        #[derive(serde::Deserialize)]
        struct Nested {
            output: Vec<Vec<f64>>,
        }
        #[derive(serde::Deserialize)]
        struct Flat {
            output: Vec<f64>,
        }
        let values = if nested {
            serde_json::from_str::<Nested>(&text).map(|a| a.output.into_iter().next())
        } else {
            serde_json::from_str::<Flat>(&text).map(|a| Some(a.output))
        };
        match values {
            Ok(Some(v)) if v.len() == expected => Ok(v),
            Ok(Some(v)) => Err(self.peer_error(
                k,
                format!("{path}: answered {} values, expected {expected}", v.len()),
            )),
            _ => Err(self.peer_error(
                k,
                format!(
                    "{path}: the answer has no numeric `output`: {}",
                    text.chars().take(200).collect::<String>()
                ),
            )),
        }
    }

    /// F(x).
    pub fn evaluate_remote(&self, x: &[f64]) -> Result<Vec<f64>> {
        self.check_input(x)?;
        self.call("/Evaluate", json!({"input": [x]}), true, self.output_size)
    }

    /// (∂F/∂x)ᵀ s.
    pub fn gradient_remote(&self, x: &[f64], sens: &[f64]) -> Result<Vec<f64>> {
        self.call(
            "/Gradient",
            json!({"input": [x], "outWrt": 0, "inWrt": 0, "sens": sens}),
            false,
            self.input_size,
        )
    }

    /// (∂F/∂x) v.
    pub fn apply_jacobian_remote(&self, x: &[f64], v: &[f64]) -> Result<Vec<f64>> {
        self.call(
            "/ApplyJacobian",
            json!({"input": [x], "outWrt": 0, "inWrt": 0, "vec": v}),
            false,
            self.output_size,
        )
    }

    fn check_input(&self, x: &[f64]) -> Result<()> {
        if x.len() != self.input_size {
            return Err(self.peer_error(
                0,
                format!(
                    "input of {} values, the model takes {}",
                    x.len(),
                    self.input_size
                ),
            ));
        }
        Ok(())
    }

    /// The full Jacobian at x: by d_Q Gradient or d_M ApplyJacobian requests (in parallel),
    /// whichever is fewer among those the model supports.
    pub fn jacobian_remote(&self, x: &[f64]) -> Result<Array2<f64>> {
        let (d_q, d_m) = (self.output_size, self.input_size);
        let by_rows = self.support.gradient && (d_q <= d_m || !self.support.apply_jacobian);
        if by_rows {
            let rows = in_parallel(d_q, |k| self.gradient_remote(x, &unit(d_q, k)))?;
            Ok(Array2::from_shape_fn((d_q, d_m), |(k, j)| rows[k][j]))
        } else if self.support.apply_jacobian {
            let cols = in_parallel(d_m, |j| self.apply_jacobian_remote(x, &unit(d_m, j)))?;
            Ok(Array2::from_shape_fn((d_q, d_m), |(k, j)| cols[j][k]))
        } else {
            Err(self.peer_error(
                0,
                "the model supports Evaluate only (no Gradient or ApplyJacobian): derivatives \
                 are not available; use --jacobian none, L2 training and the pcn kernel"
                    .into(),
            ))
        }
    }
}

/// `request(i)` for i < n, in parallel (concurrent requests), the first error if any.
fn in_parallel(
    n: usize,
    request: impl Fn(usize) -> Result<Vec<f64>> + Sync + Send,
) -> Result<Vec<Vec<f64>>> {
    (0..n).into_par_iter().map(request).collect()
}

/// The k-th unit vector of ℝⁿ.
fn unit(n: usize, k: usize) -> Vec<f64> {
    let mut e = vec![0.0; n];
    e[k] = 1.0;
    e
}

/// F(m) and the full Jacobian at m.
struct RemoteLinearization {
    q: Vec<f64>,
    jacobian: Array2<f64>,
}

impl Linearization for RemoteLinearization {
    fn output(&self) -> &[f64] {
        &self.q
    }
    fn jvp(&self, v: &[f64]) -> Vec<f64> {
        self.jacobian.dot(&ndarray::ArrayView1::from(v)).to_vec()
    }
    fn vjp(&self, w: &[f64]) -> Vec<f64> {
        self.jacobian
            .t()
            .dot(&ndarray::ArrayView1::from(w))
            .to_vec()
    }
    fn jacobian(&self) -> Array2<f64> {
        self.jacobian.clone()
    }
}

impl DifferentiableMap for UmBridgeModel {
    fn input_dim(&self) -> usize {
        self.input_size
    }
    fn output_dim(&self) -> usize {
        self.output_size
    }
    fn linearize(&self, m: &[f64]) -> Result<Box<dyn Linearization + '_>> {
        let q = self.evaluate_remote(m)?;
        let jacobian = self.jacobian_remote(m)?;
        Ok(Box::new(RemoteLinearization { q, jacobian }))
    }
    fn evaluate(&self, m: &[f64]) -> Result<Vec<f64>> {
        self.evaluate_remote(m)
    }
    /// J V by r ApplyJacobian requests when that is fewer than the d_Q Gradient requests of
    /// the full Jacobian (or the model has no Gradient), else the full Jacobian times V.
    fn output_and_jacobian(
        &self,
        m: &[f64],
        need: JacobianNeed<'_>,
    ) -> Result<(Vec<f64>, Option<Array2<f64>>)> {
        let q = self.evaluate_remote(m)?;
        let jacobian = match need {
            JacobianNeed::None => None,
            JacobianNeed::Full => Some(self.jacobian_remote(m)?),
            JacobianNeed::Projected(v) => {
                let by_columns = self.support.apply_jacobian
                    && (v.ncols() <= self.output_size || !self.support.gradient);
                if by_columns {
                    let cols = in_parallel(v.ncols(), |j| {
                        self.apply_jacobian_remote(m, &v.column(j).to_vec())
                    })?;
                    Some(Array2::from_shape_fn(
                        (self.output_size, v.ncols()),
                        |(k, j)| cols[j][k],
                    ))
                } else {
                    Some(self.jacobian_remote(m)?.dot(v))
                }
            }
        };
        Ok((q, jacobian))
    }
}
