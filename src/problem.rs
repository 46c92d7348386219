//! Problem files: the TOML description of a PDE problem (mesh, PDE, observations, prior, noise).
//!
//! Unknown keys and wrong types are errors naming the file and the key; values are validated
//! here, with the field's dotted path in the message. See `problems/poisson.toml` for the format.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fem::p2::P2Space;
use crate::fem::{Mesh, Side};
use crate::io::npy::write_matrix;
use crate::models::navier_stokes::{solve_navier_stokes, FlowField, NavierStokesSettings};
use crate::models::{
    mollified_sources, ConvectionModel, ConvectionSettings, DiffusionModel, DiffusionSettings,
    PdeModel, SourceFn,
};
use crate::newton::NewtonSettings;
use crate::prior::{BiLaplacianParams, BiLaplacianPrior, Mean};

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
    fn entries(&self) -> Vec<(Side, f64)> {
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

/// A validated problem: its spec, where it came from, and the mesh size in force.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The file it was read from.
    pub path: PathBuf,
    /// The parsed, validated contents.
    pub spec: ProblemSpec,
}

impl Problem {
    /// Reads and validates a problem file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parses and validates problem-file text; `path` names it in errors.
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let spec: ProblemSpec = toml::from_str(text)
            .map_err(|e| Error::parse(path, format!("invalid problem file: {e}")))?;
        let problem = Problem {
            path: path.to_path_buf(),
            spec,
        };
        problem.validate()?;
        Ok(problem)
    }

    /// The same problem on an `n × n` mesh.
    pub fn with_mesh(mut self, n: i64) -> Result<Self> {
        self.spec.mesh.n = n;
        self.validate()?;
        Ok(self)
    }

    fn file(&self) -> String {
        self.path.display().to_string()
    }

    fn invalid(&self, field: &str, expected: &str, found: impl ToString) -> Error {
        Error::invalid(self.file(), field, expected, found)
    }

    fn validate(&self) -> Result<()> {
        let s = &self.spec;
        if !(1..=4096).contains(&s.mesh.n) {
            return Err(self.invalid("mesh.n", "an integer between 1 and 4096", s.mesh.n));
        }
        match &s.pde {
            PdeSpec::Poisson { source, dirichlet } => {
                if !source.is_finite() {
                    return Err(self.invalid("pde.source", "a finite number", source));
                }
                self.validate_dirichlet(dirichlet)?;
            }
            PdeSpec::ReactionDiffusion {
                reaction,
                dirichlet,
                sources,
            } => {
                if !(*reaction >= 0.0 && reaction.is_finite()) {
                    return Err(self.invalid("pde.reaction", "a non-negative number", reaction));
                }
                self.validate_dirichlet(dirichlet)?;
                if let Some(sources) = sources {
                    self.sources(sources)?;
                }
            }
            PdeSpec::ConvectionReactionDiffusion {
                diffusivity,
                source,
                velocity,
            } => {
                if !(*diffusivity > 0.0 && diffusivity.is_finite()) {
                    return Err(self.invalid("pde.diffusivity", "a positive number", diffusivity));
                }
                if !source.center.iter().all(|c| (0.0..=1.0).contains(c)) {
                    return Err(self.invalid(
                        "pde.source.center",
                        "a point in the unit square [0,1]² (inside the domain)",
                        format!("({}, {})", source.center[0], source.center[1]),
                    ));
                }
                for (name, v) in [
                    ("pde.source.decay", source.decay),
                    ("pde.source.floor", source.floor),
                ] {
                    if !v.is_finite() {
                        return Err(self.invalid(name, "a finite number", v));
                    }
                }
                if !(velocity.reynolds > 0.0 && velocity.reynolds.is_finite()) {
                    return Err(self.invalid(
                        "pde.velocity.reynolds",
                        "a positive number",
                        velocity.reynolds,
                    ));
                }
                for (side, v) in [
                    ("left", velocity.left),
                    ("right", velocity.right),
                    ("bottom", velocity.bottom),
                    ("top", velocity.top),
                ] {
                    if !v.iter().all(|c| c.is_finite()) {
                        return Err(self.invalid(
                            &format!("pde.velocity.{side}"),
                            "two finite numbers",
                            format!("{v:?}"),
                        ));
                    }
                }
            }
        }
        self.observation_points_checked()?;
        let p = &s.prior;
        for (name, v) in [("prior.gamma", p.gamma), ("prior.delta", p.delta)] {
            if !(v > 0.0 && v.is_finite()) {
                return Err(self.invalid(name, "a positive number", v));
            }
        }
        if let Some(a) = &p.anisotropy {
            for (name, v) in [
                ("prior.anisotropy.theta0", a.theta0),
                ("prior.anisotropy.theta1", a.theta1),
            ] {
                if !(v > 0.0 && v.is_finite()) {
                    return Err(self.invalid(name, "a positive number", v));
                }
            }
            if !a.alpha.is_finite() {
                return Err(self.invalid(
                    "prior.anisotropy.alpha",
                    "a finite angle in radians",
                    a.alpha,
                ));
            }
        }
        if !p.mean.is_finite() {
            return Err(self.invalid("prior.mean", "a finite number", p.mean));
        }
        if let Some(noise) = &s.noise {
            if !(noise.relative > 0.0 && noise.relative.is_finite()) {
                return Err(self.invalid("noise.relative", "a positive number", noise.relative));
            }
        }
        if let Some(control) = &s.control {
            self.control_sources(control)?;
        }
        if let Some(qoi) = &s.qoi {
            if !qoi.amplitude.is_finite() {
                return Err(self.invalid("qoi.amplitude", "a finite number", qoi.amplitude));
            }
        }
        Ok(())
    }

    fn validate_dirichlet(&self, dirichlet: &SideValues) -> Result<()> {
        let entries = dirichlet.entries();
        if entries.is_empty() {
            return Err(self.invalid(
                "pde.dirichlet",
                "a value on at least one side (left, right, bottom, top)",
                "none",
            ));
        }
        if let Some((side, v)) = entries.iter().find(|(_, v)| !v.is_finite()) {
            return Err(self.invalid(
                &format!("pde.dirichlet.{}", side.name()),
                "a finite number",
                v,
            ));
        }
        Ok(())
    }

    /// The points of a point set given as a grid (x fastest) or a list, checked to lie in [0,1]²;
    /// `field` is the set's dotted path. Also returns the grid shape (nx, ny) for a grid.
    fn point_set(
        &self,
        field: &str,
        grid_x: &Option<Range>,
        grid_y: &Option<Range>,
        points: &Option<Vec<[f64; 2]>>,
    ) -> Result<(Vec<[f64; 2]>, Option<GridShape>)> {
        match (grid_x, grid_y, points) {
            (Some(gx), Some(gy), None) => {
                for (name, r) in [("grid_x", gx), ("grid_y", gy)] {
                    if r.count < 1 {
                        return Err(self.invalid(
                            &format!("{field}.{name}.count"),
                            "a positive integer",
                            r.count,
                        ));
                    }
                    for (end, v) in [("start", r.start), ("stop", r.stop)] {
                        if !(0.0..=1.0).contains(&v) {
                            return Err(self.invalid(
                                &format!("{field}.{name}.{end}"),
                                "a coordinate in [0, 1] (inside the domain)",
                                v,
                            ));
                        }
                    }
                }
                let xs = linspace(gx);
                let pts = linspace(gy)
                    .into_iter()
                    .flat_map(|y| xs.iter().map(move |&x| [x, y]))
                    .collect();
                Ok((pts, Some((gx.count as usize, gy.count as usize))))
            }
            (None, None, Some(points)) => {
                if points.is_empty() {
                    return Err(self.invalid(
                        &format!("{field}.points"),
                        "at least one point",
                        "an empty list",
                    ));
                }
                for (i, p) in points.iter().enumerate() {
                    if !p.iter().all(|c| (0.0..=1.0).contains(c)) {
                        return Err(self.invalid(
                            &format!("{field}.points[{i}]"),
                            "a point in the unit square [0,1]² (inside the domain)",
                            format!("({}, {})", p[0], p[1]),
                        ));
                    }
                }
                Ok((points.clone(), None))
            }
            _ => Err(self.invalid(
                field,
                "either both `grid_x` and `grid_y`, or `points`",
                "another combination",
            )),
        }
    }

    fn observation_points_checked(&self) -> Result<Vec<[f64; 2]>> {
        match &self.spec.observations {
            None => Ok(Vec::new()),
            Some(o) => Ok(self
                .point_set("observations", &o.grid_x, &o.grid_y, &o.points)?
                .0),
        }
    }

    /// Centres and strengths of the mollified sources, validated.
    fn sources(&self, spec: &SourcesSpec) -> Result<(Vec<[f64; 2]>, Vec<f64>)> {
        if !(spec.width > 0.0 && spec.width.is_finite()) {
            return Err(self.invalid("pde.sources.width", "a positive number", spec.width));
        }
        let (centers, grid) =
            self.point_set("pde.sources", &spec.grid_x, &spec.grid_y, &spec.points)?;
        let strengths = match (&spec.strengths, spec.checkerboard, grid) {
            (Some(s), None, _) => {
                if s.len() != centers.len() {
                    return Err(self.invalid(
                        "pde.sources.strengths",
                        &format!("one strength per source centre ({})", centers.len()),
                        format!("{} values", s.len()),
                    ));
                }
                if let Some(v) = s.iter().find(|v| !v.is_finite()) {
                    return Err(self.invalid("pde.sources.strengths", "finite numbers", v));
                }
                s.clone()
            }
            (None, Some(amplitude), Some((nx, _))) if amplitude.is_finite() => (0..centers.len())
                .map(|k| {
                    if (k % nx + k / nx) % 2 == 0 {
                        -amplitude
                    } else {
                        amplitude
                    }
                })
                .collect(),
            (None, Some(amplitude), _) => {
                return Err(self.invalid(
                    "pde.sources.checkerboard",
                    "a finite amplitude, with centres given as a grid",
                    amplitude,
                ))
            }
            _ => {
                return Err(self.invalid(
                    "pde.sources",
                    "either `strengths` (one per centre) or `checkerboard`",
                    "neither or both",
                ))
            }
        };
        Ok((centers, strengths))
    }

    /// Centres of the control sources and the bounds, validated.
    fn control_sources(&self, spec: &ControlSpec) -> Result<Vec<[f64; 2]>> {
        if !(spec.width > 0.0 && spec.width.is_finite()) {
            return Err(self.invalid("control.width", "a positive number", spec.width));
        }
        if !(spec.lower.is_finite() && spec.upper.is_finite() && spec.lower <= spec.upper) {
            return Err(self.invalid(
                "control.lower / control.upper",
                "finite bounds with lower ≤ upper",
                format!("lower = {}, upper = {}", spec.lower, spec.upper),
            ));
        }
        Ok(self
            .point_set("control", &spec.grid_x, &spec.grid_y, &spec.points)?
            .0)
    }

    /// The controlled forward model z, m ↦ u and the QoI of an optimization-under-uncertainty
    /// problem; an error naming the missing section when the file has no `[control]` or `[qoi]`.
    pub fn control_problem(&self) -> Result<crate::models::ControlledDiffusion> {
        let control = self.spec.control.as_ref().ok_or_else(|| {
            self.invalid(
                "control",
                "a [control] section (width, grid_x/grid_y or points, lower, upper)",
                "none",
            )
        })?;
        let qoi =
            self.spec.qoi.as_ref().ok_or_else(|| {
                self.invalid("qoi", "a [qoi] section (target, amplitude)", "none")
            })?;
        let centers = self.control_sources(control)?;
        let settings = match &self.spec.pde {
            PdeSpec::ConvectionReactionDiffusion { .. } => {
                return Err(self.invalid(
                    "pde.model",
                    "poisson or reaction_diffusion for a problem with [control]",
                    "convection_reaction_diffusion",
                ))
            }
            _ => self.diffusion_settings()?,
        };
        let model = DiffusionModel::new(self.mesh(), &settings).map_err(|e| self.rename(e))?;
        let (kind, a) = (qoi.target, qoi.amplitude);
        crate::models::ControlledDiffusion::new(
            model,
            &centers,
            control.width,
            [control.lower, control.upper],
            move |x, y| kind.value(a, x, y),
        )
    }

    /// The relative noise level of `[noise]`; an error when the file has none.
    pub fn noise_relative(&self) -> Result<f64> {
        self.spec
            .noise
            .as_ref()
            .map(|n| n.relative)
            .ok_or_else(|| self.invalid("noise", "a [noise] section (relative = …)", "none"))
    }

    /// Cells per side.
    pub fn mesh_size(&self) -> usize {
        self.spec.mesh.n as usize
    }

    /// The mesh.
    pub fn mesh(&self) -> Mesh {
        Mesh::unit_square(self.mesh_size())
    }

    /// Observation points, x fastest for a grid.
    pub fn observation_points(&self) -> Vec<[f64; 2]> {
        self.observation_points_checked()
            .expect("validated when loaded")
    }

    /// The forward model m ↦ q = B u(m); an error when the file has no `[observations]`.
    pub fn model(&self) -> Result<Box<dyn PdeModel>> {
        if self.spec.observations.is_none() {
            return Err(self.invalid(
                "observations",
                "an [observations] section (the observable q = B u of this command)",
                "none",
            ));
        }
        if let PdeSpec::ConvectionReactionDiffusion {
            diffusivity,
            source,
            velocity,
        } = &self.spec.pde
        {
            let flow = self.flow(velocity)?;
            let BumpSource {
                center,
                decay,
                floor,
            } = source.clone();
            let settings = ConvectionSettings {
                diffusivity: *diffusivity,
                source: Arc::new(move |x, y| {
                    floor.max((-decay * ((x - center[0]).powi(2) + (y - center[1]).powi(2))).exp())
                }),
                observation_points: self.observation_points(),
                newton: NewtonSettings::default(),
            };
            return Ok(Box::new(
                ConvectionModel::new(self.mesh(), &flow, &settings).map_err(|e| self.rename(e))?,
            ));
        }
        let settings = self.diffusion_settings()?;
        Ok(Box::new(
            DiffusionModel::new(self.mesh(), &settings).map_err(|e| self.rename(e))?,
        ))
    }

    /// Settings of the diffusion(–reaction) models (poisson, reaction_diffusion).
    fn diffusion_settings(&self) -> Result<DiffusionSettings> {
        Ok(match &self.spec.pde {
            PdeSpec::Poisson { source, dirichlet } => DiffusionSettings {
                name: "poisson",
                reaction: 0.0,
                source: (*source != 0.0).then(|| {
                    let f = *source;
                    Arc::new(move |_: f64, _: f64| f) as SourceFn
                }),
                dirichlet: dirichlet.entries(),
                observation_points: self.observation_points(),
                newton: NewtonSettings::default(),
            },
            PdeSpec::ReactionDiffusion {
                reaction,
                dirichlet,
                sources,
            } => {
                let source = match sources {
                    Some(sources) => {
                        let (centers, strengths) = self.sources(sources)?;
                        Some(mollified_sources(centers, strengths, sources.width))
                    }
                    None => None,
                };
                DiffusionSettings {
                    name: "reaction_diffusion",
                    reaction: *reaction,
                    source,
                    dirichlet: dirichlet.entries(),
                    observation_points: self.observation_points(),
                    newton: NewtonSettings::default(),
                }
            }
            PdeSpec::ConvectionReactionDiffusion { .. } => {
                return Err(self.invalid(
                    "pde.model",
                    "poisson or reaction_diffusion",
                    "convection_reaction_diffusion",
                ))
            }
        })
    }

    /// A 64-bit FNV-1a hash of the problem as parsed (mesh override included), in hex: what a
    /// data set or surrogate records to recognize the problem it was made for.
    pub fn hash(&self) -> String {
        let canonical = serde_json::to_string(&self.spec).expect("problem specs serialize");
        format!(
            "{:016x}",
            crate::io::checksum::fnv1a64(canonical.as_bytes())
        )
    }

    /// The velocity for the convection problem: read from the cache beside the problem file, or
    /// solved (steady Navier–Stokes) and cached.
    fn flow(&self, spec: &VelocitySpec) -> Result<FlowField> {
        let mesh = self.mesh();
        let key = format!(
            "taylor-hood-p2p1-v1 n={} {}",
            self.mesh_size(),
            serde_json::to_string(spec).expect("serializable")
        );
        let dir = self
            .path
            .parent()
            .unwrap_or(Path::new("."))
            .join(".dino-cache");
        let cache = dir.join(format!(
            "velocity-{:016x}.npy",
            crate::io::checksum::fnv1a64(key.as_bytes())
        ));
        let space = P2Space::new(&mesh);
        if let Ok(v) = ndarray_npy::read_npy::<_, ndarray::Array2<f64>>(&cache) {
            if v.shape() == [2, space.num_nodes()] && v.iter().all(|x| x.is_finite()) {
                return Ok(FlowField {
                    space,
                    velocity: [v.row(0).to_vec(), v.row(1).to_vec()],
                    pressure: Vec::new(),
                    residual_norms: Vec::new(),
                });
            }
        }
        eprintln!(
            "solving steady Navier–Stokes (Re = {}) on the {n}×{n} mesh for the convection field; caching it in {}",
            spec.reynolds,
            cache.display(),
            n = self.mesh_size()
        );
        let sides = [
            (Side::Bottom, spec.bottom),
            (Side::Top, spec.top),
            (Side::Left, spec.left),
            (Side::Right, spec.right),
        ];
        let boundary_velocity = Arc::new(move |x: f64, y: f64| {
            let on = |side: Side| match side {
                Side::Left => x < 1e-12,
                Side::Right => x > 1.0 - 1e-12,
                Side::Bottom => y < 1e-12,
                Side::Top => y > 1.0 - 1e-12,
            };
            sides
                .iter()
                .rev()
                .find(|(s, _)| on(*s))
                .map_or([0.0, 0.0], |(_, v)| *v)
        });
        let flow = solve_navier_stokes(
            &mesh,
            &NavierStokesSettings {
                reynolds: spec.reynolds,
                boundary_velocity,
                newton: NewtonSettings::default(),
            },
        )?;
        let mut v = ndarray::Array2::zeros((2, flow.space.num_nodes()));
        for i in 0..2 {
            v.row_mut(i)
                .assign(&ndarray::ArrayView1::from(&flow.velocity[i]));
        }
        if let Err(e) = write_matrix(&cache, &v) {
            eprintln!("warning: could not cache the velocity field: {e}");
        }
        Ok(flow)
    }

    /// The prior.
    pub fn prior(&self) -> Result<BiLaplacianPrior> {
        let p = &self.spec.prior;
        let params = BiLaplacianParams {
            gamma: p.gamma,
            delta: p.delta,
            anisotropy: p.anisotropy.as_ref().map(|a| (a.theta0, a.theta1, a.alpha)),
            robin: p.robin,
            mean: Mean::Constant(p.mean),
        };
        BiLaplacianPrior::new(&self.mesh(), params).map_err(|e| self.rename(e))
    }

    /// Attributes a validation error raised while building to this file.
    fn rename(&self, e: Error) -> Error {
        match e {
            Error::Invalid {
                field,
                expected,
                found,
                ..
            } => Error::Invalid {
                file: self.file(),
                field,
                expected,
                found,
            },
            other => other,
        }
    }
}

/// (nx, ny) of a point grid.
type GridShape = (usize, usize);

fn linspace(r: &Range) -> Vec<f64> {
    let n = r.count as usize;
    if n == 1 {
        return vec![r.start];
    }
    (0..n)
        .map(|i| r.start + (r.stop - r.start) * i as f64 / (n - 1) as f64)
        .collect()
}
