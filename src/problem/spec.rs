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

/// `[mesh]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MeshSpec {
    /// Cells per side of the unit square.
    pub n: i64,
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
        /// Dirichlet values by side; the other sides carry homogeneous Neumann conditions.
        dirichlet: SideValues,
    },
    /// −∇·(e^m ∇u) + c u³ = Σ_k s_k g_k (mollified point sources)
    ReactionDiffusion {
        /// c ≥ 0 (default 1).
        #[serde(default = "one")]
        reaction: f64,
        /// Dirichlet values by side; the other sides carry homogeneous Neumann conditions.
        dirichlet: SideValues,
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

/// Values on some of the four sides.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SideValues {
    pub left: Option<f64>,
    pub right: Option<f64>,
    pub bottom: Option<f64>,
    pub top: Option<f64>,
}

impl SideValues {
    /// The sides that carry a Dirichlet value, with it.
    pub(crate) fn entries(&self) -> Vec<(Side, f64)> {
        [
            (Side::Left, self.left),
            (Side::Right, self.right),
            (Side::Bottom, self.bottom),
            (Side::Top, self.top),
        ]
        .into_iter()
        .filter_map(|(s, v)| v.map(|v| (s, v)))
        .collect()
    }
}

/// `[observations]`: a tensor grid (`grid_x` × `grid_y`, x fastest) or explicit `points`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ObservationSpec {
    pub grid_x: Option<Range>,
    pub grid_y: Option<Range>,
    pub points: Option<Vec<[f64; 2]>>,
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

/// `[noise]`: σ = relative · max_k |q_k(m_true)|.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseSpec {
    pub relative: f64,
}
