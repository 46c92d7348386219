//! The contents of a problem file as serde types: `[mesh]`, `[pde]` (selected by `model`),
//! `[observations]`, `[prior]`, `[noise]`, `[control]`, `[qoi]`. Unknown keys and wrong types
//! are parse errors naming the key; value checks are in `problem::validate`.

use serde::{Deserialize, Serialize};

use crate::fem::Side;

/// The contents of a problem file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProblemSpec {
    /// A short description.
    #[serde(default)]
    pub description: String,
    pub mesh: MeshSpec,
    pub pde: PdeSpec,
    /// Observations of the state (inverse problems and observable surrogates need them).
    #[serde(default)]
    pub observations: Option<ObservationSpec>,
    pub prior: PriorSpec,
    /// Observation noise (inverse problems need it).
    #[serde(default)]
    pub noise: Option<NoiseSpec>,
    /// A control input z (optimization under uncertainty), `[control]`. Not serialized when
    /// absent, so that the hashes of problems without one stay what they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<ControlSpec>,
    /// The control objective's quantity of interest, `[qoi]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qoi: Option<QoiSpec>,
}

/// `[mesh]`: the structured unit square (`n` cells per side) or a Gmsh file (`file`, relative
/// to the problem file; MSH 2.2 or 4.1, ASCII or binary, 3-node triangles).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MeshSpec {
    /// Cells per side of the unit square.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<i64>,
    /// A Gmsh mesh file. Nodal fields on it are ordered by ascending Gmsh node tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// `[pde]`, selected by `model`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
pub enum PdeSpec {
    /// −∇·(e^m ∇u) = f
    Poisson {
        /// Constant source f (default 0).
        #[serde(default)]
        source: f64,
        /// Dirichlet values by boundary group; the rest of the boundary is homogeneous Neumann.
        dirichlet: BoundaryValues,
    },
    /// −∇·(e^m ∇u) + c u³ = Σ_k s_k g_k (mollified point sources)
    ReactionDiffusion {
        /// c ≥ 0 (default 1).
        #[serde(default = "one")]
        reaction: f64,
        /// Dirichlet values by boundary group; the rest of the boundary is homogeneous Neumann.
        dirichlet: BoundaryValues,
        /// The source terms (none: f = 0).
        #[serde(default)]
        sources: Option<SourcesSpec>,
    },
    /// −κ Δu + v·∇u + e^m u³ = f, u = 0 on the boundary, v from steady Navier–Stokes
    ConvectionReactionDiffusion {
        /// κ > 0
        diffusivity: f64,
        /// f = max(floor, exp(−decay ‖x − center‖²))
        source: BumpSource,
        /// The flow that convects u.
        velocity: VelocitySpec,
    },
    /// Any UM-Bridge model server as the map m ↦ q (the parameter a nodal field on the mesh).
    Umbridge {
        /// One URL or a list (requests are spread over them round robin).
        url: Urls,
        /// The model's name on the server (default "forward").
        #[serde(default = "forward_name")]
        name: String,
        /// Sent as the UM-Bridge `config` object with every request.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        config: Option<serde_json::Map<String, serde_json::Value>>,
        /// Per-request timeout in seconds (default 600).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_s: Option<f64>,
        /// Retries (with exponential backoff from 0.2 s) on refused connections, timeouts and
        /// 5xx answers (default 3).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retries: Option<usize>,
    },
}

fn forward_name() -> String {
    "forward".into()
}

/// One URL or several.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Urls {
    One(String),
    Many(Vec<String>),
}

impl Urls {
    pub fn list(&self) -> Vec<String> {
        match self {
            Urls::One(u) => vec![u.clone()],
            Urls::Many(v) => v.clone(),
        }
    }
}

/// f(x) = max(floor, exp(−decay ‖x − center‖²)).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BumpSource {
    pub center: [f64; 2],
    pub decay: f64,
    #[serde(default)]
    pub floor: f64,
}

/// `[pde.velocity]`: steady Navier–Stokes at Reynolds number `reynolds` driven by wall velocities
/// (left and right win at the corners). Solved once per mesh (Taylor–Hood P2/P1, Newton) and cached
/// in `.dino-cache/` beside the problem file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VelocitySpec {
    pub reynolds: f64,
    #[serde(default)]
    pub left: [f64; 2],
    #[serde(default)]
    pub right: [f64; 2],
    #[serde(default)]
    pub bottom: [f64; 2],
    #[serde(default)]
    pub top: [f64; 2],
}

fn one() -> f64 {
    1.0
}

/// `[pde.sources]`: mollified point sources s_k exp(−‖x − x_k‖²/b²)/(2π b²), b = `width`,
/// centred on a grid (`grid_x` × `grid_y`, x fastest) or on `points`; strengths from `strengths`
/// (one per centre) or `checkerboard = s` (a grid only: −s where i + j is even, +s where odd).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesSpec {
    pub width: f64,
    pub grid_x: Option<Range>,
    pub grid_y: Option<Range>,
    pub points: Option<Vec<[f64; 2]>>,
    pub strengths: Option<Vec<f64>>,
    pub checkerboard: Option<f64>,
}

/// Values on some boundary groups, by name: `left`, `right`, `bottom`, `top` on the unit
/// square, the physical curve names of a Gmsh mesh. Kept in this order: the square's sides in
/// that order, then other names alphabetically (where two groups meet, the later one wins).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BoundaryValues(pub Vec<(String, f64)>);

impl BoundaryValues {
    /// The groups that carry a value, with it.
    pub fn entries(&self) -> Vec<(String, f64)> {
        self.0.clone()
    }

    fn rank(name: &str) -> (usize, &str) {
        let side = Side::ALL.iter().position(|s| s.name() == name);
        (side.unwrap_or(Side::ALL.len()), name)
    }
}

impl<'de> Deserialize<'de> for BoundaryValues {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = std::collections::BTreeMap::<String, f64>::deserialize(d)?;
        let mut v: Vec<(String, f64)> = map.into_iter().collect();
        v.sort_by(|a, b| Self::rank(&a.0).cmp(&Self::rank(&b.0)));
        Ok(BoundaryValues(v))
    }
}

impl Serialize for BoundaryValues {
    /// The square's sides as the four keys `left`, `right`, `bottom`, `top` (null where not
    /// given: what problem hashes were made of before other names existed), other names as a map.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let all_sides = self
            .0
            .iter()
            .all(|(k, _)| Self::rank(k).0 < Side::ALL.len());
        let mut map = s.serialize_map(None)?;
        if all_sides {
            for side in Side::ALL {
                let v = self.0.iter().find(|(k, _)| k == side.name()).map(|e| e.1);
                map.serialize_entry(side.name(), &v)?;
            }
        } else {
            for (k, v) in &self.0 {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

/// `[observations]`: a tensor grid (`grid_x` × `grid_y`, x fastest), explicit `points`, or a
/// CSV file of measurements `data` (relative to the problem file; header `x,y,value` and
/// optionally `std`): its points are the observation points and its values the data.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ObservationSpec {
    pub grid_x: Option<Range>,
    pub grid_y: Option<Range>,
    pub points: Option<Vec<[f64; 2]>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// `count` equispaced values from `start` to `stop` inclusive (numpy's linspace).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    pub start: f64,
    pub stop: f64,
    pub count: i64,
}

/// `[prior]`: BiLaplacian prior.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PriorSpec {
    pub gamma: f64,
    pub delta: f64,
    pub anisotropy: Option<AnisotropySpec>,
    #[serde(default)]
    pub robin: bool,
    #[serde(default)]
    pub mean: f64,
}

/// Θ(θ0, θ1, α).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnisotropySpec {
    pub theta0: f64,
    pub theta1: f64,
    pub alpha: f64,
}

/// `[control]`: z ∈ [lower, upper]^{n_z} are the strengths of mollified sources
/// Σ_k z_k exp(−‖x − x_k‖²/b²)/(2π b²), b = `width`, added to the PDE's right-hand side, centred
/// on a grid (`grid_x` × `grid_y`, x fastest) or on `points`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSpec {
    pub width: f64,
    pub grid_x: Option<Range>,
    pub grid_y: Option<Range>,
    pub points: Option<Vec<[f64; 2]>>,
    pub lower: f64,
    pub upper: f64,
}

/// `[qoi]`: Q(z, m) = ∫ (u − ū)² dx with the target ū given by `target`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QoiSpec {
    pub target: TargetKind,
    /// a in the target's formula (default 1).
    #[serde(default = "one")]
    pub amplitude: f64,
}

/// The target state ū of `[qoi]` (SOUPy's choices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// a sin(2πx) sin(2πy)
    Sinusoid,
    /// a
    Constant,
    /// 4 a y (1 − y)
    Arch,
}

impl TargetKind {
    /// ū(x, y) for amplitude a.
    pub fn value(self, a: f64, x: f64, y: f64) -> f64 {
        use std::f64::consts::PI;
        match self {
            TargetKind::Sinusoid => a * (2.0 * PI * x).sin() * (2.0 * PI * y).sin(),
            TargetKind::Constant => a,
            TargetKind::Arch => 4.0 * a * y * (1.0 - y),
        }
    }
}

/// `[noise]`, one of: `relative` (σ = relative · max_k |q_k(m_true)|, synthetic truth only),
/// `std` (the same absolute σ for every datum) or `covariance` (a d_Q × d_Q SPD matrix in a
/// `.npy` file relative to the problem file). With none of them, the data CSV's `std` column.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covariance: Option<String>,
}
