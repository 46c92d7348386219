//! UM-Bridge protocol 1.0 bodies (as the reference `umbridge` Python server and C++ header
//! exchange them). Every request names its model; inputs are lists of vectors (dino's models
//! have one input and one output vector, so `inWrt`/`outWrt` must be 0).

use serde::{Deserialize, Serialize};

/// The protocol version this server speaks.
pub const PROTOCOL_VERSION: f64 = 1.0;

/// Any request's model name (checked before the rest of the body).
#[derive(Debug, Deserialize)]
pub struct Named {
    pub name: String,
}

/// `/Evaluate`, `/Gradient`, `/ApplyJacobian`, `/ApplyHessian`: the fields each uses.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub name: String,
    pub input: Vec<Vec<f64>>,
    #[serde(default)]
    pub out_wrt: usize,
    #[serde(default)]
    pub in_wrt: usize,
    #[serde(default)]
    pub in_wrt1: usize,
    #[serde(default)]
    pub in_wrt2: usize,
    #[serde(default)]
    pub sens: Option<Vec<f64>>,
    #[serde(default)]
    pub vec: Option<Vec<f64>>,
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
}

/// `GET /Info`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Info<'a> {
    pub protocol_version: f64,
    pub models: Vec<&'a str>,
}

/// `/ModelInfo`.
#[derive(Debug, Serialize)]
pub struct ModelInfo {
    pub support: SupportBody,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SupportBody {
    pub evaluate: bool,
    pub gradient: bool,
    pub apply_jacobian: bool,
    pub apply_hessian: bool,
}

/// `/InputSizes`, `/OutputSizes`.
#[derive(Debug, Serialize)]
pub struct Sizes {
    #[serde(rename = "inputSizes", skip_serializing_if = "Option::is_none")]
    pub input_sizes: Option<Vec<usize>>,
    #[serde(rename = "outputSizes", skip_serializing_if = "Option::is_none")]
    pub output_sizes: Option<Vec<usize>>,
}

/// `/Evaluate` output (a list of vectors).
#[derive(Debug, Serialize)]
pub struct Outputs {
    pub output: Vec<Vec<f64>>,
}

/// `/Gradient`, `/ApplyJacobian`, `/ApplyHessian` output (one vector).
#[derive(Debug, Serialize)]
pub struct Output {
    pub output: Vec<f64>,
}

/// An error response body.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize)]
pub struct ErrorDetail {
    /// `ModelNotFound`, `UnsupportedFeature`, `InvalidInput` or `InvalidOutput`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: String,
}
