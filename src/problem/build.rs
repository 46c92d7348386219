//! Construction from a validated problem: the PDE model m ↦ q = B u(m) (Poisson,
//! reaction–diffusion, or convection–reaction–diffusion with its Navier–Stokes velocity), the
//! controlled model of an OUU problem, and the BiLaplacian prior.

use std::sync::Arc;

use std::path::Path;

use super::{BumpSource, PdeSpec, Problem, VelocitySpec};
use crate::error::Result;
use crate::fem::p2::P2Space;
use crate::fem::Side;
use crate::io::npy::write_matrix;
use crate::map::DifferentiableMap;
use crate::models::navier_stokes::{solve_navier_stokes, FlowField, NavierStokesSettings};
use crate::models::{
    mollified_sources, ConvectionModel, ConvectionSettings, DiffusionModel, DiffusionSettings,
    PdeModel, SourceFn,
};
use crate::newton::NewtonSettings;
use crate::prior::{BiLaplacianParams, BiLaplacianPrior, Mean};

impl Problem {
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

    /// The forward model m ↦ q = B u(m); an error when the file has no `[observations]`.
    pub fn model(&self) -> Result<Box<dyn PdeModel>> {
        if let PdeSpec::Umbridge { .. } = &self.spec.pde {
            return Ok(Box::new(self.external_model()?));
        }
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
            PdeSpec::Umbridge { .. } => {
                return Err(self.invalid(
                    "pde.model",
                    "poisson or reaction_diffusion (an UM-Bridge model has no control input here)",
                    "umbridge",
                ))
            }
        })
    }

    /// The UM-Bridge model of `[pde] model = "umbridge"`: connected, and checked to take one
    /// value per mesh vertex.
    fn external_model(&self) -> Result<crate::models::ExternalModel> {
        let PdeSpec::Umbridge {
            url,
            name,
            config,
            timeout_s,
            retries,
        } = &self.spec.pde
        else {
            unreachable!("called for umbridge problems")
        };
        let defaults = crate::umbridge::client::ClientSettings::default();
        let settings = crate::umbridge::client::ClientSettings {
            timeout: timeout_s.map_or(defaults.timeout, std::time::Duration::from_secs_f64),
            retries: retries.unwrap_or(defaults.retries),
            backoff: defaults.backoff,
        };
        let config = serde_json::Value::Object(config.clone().unwrap_or_default());
        let remote =
            crate::umbridge::client::UmBridgeModel::connect(&url.list(), name, config, settings)?;
        let d_m = self.mesh.num_vertices();
        if remote.input_dim() != d_m {
            return Err(self.invalid(
                "pde.url",
                &format!(
                    "a model with one input per mesh vertex ({d_m} for the {} mesh)",
                    self.mesh_label()
                ),
                format!("input size {}", remote.input_dim()),
            ));
        }
        Ok(crate::models::ExternalModel::new(self.mesh(), remote))
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
}
