//! Value checks of a parsed problem file: every number finite and in range, point sets inside
//! the unit square, sources and controls consistent; each error names the field's dotted path.

use super::{BoundaryValues, ControlSpec, PdeSpec, PriorSpec, Problem, Range, SourcesSpec};
use crate::error::Result;

impl Problem {
    pub(super) fn validate(&self) -> Result<()> {
        let s = &self.spec;
        self.validate_pde(&s.pde)?;
        self.observation_points_checked()?;
        self.validate_prior(&s.prior)?;
        if let Some(noise) = &s.noise {
            for (name, v) in [("noise.relative", noise.relative), ("noise.std", noise.std)] {
                if let Some(v) = v.filter(|v| !(*v > 0.0 && v.is_finite())) {
                    return Err(self.invalid(name, "a positive number", v));
                }
            }
            if noise.relative.is_some() && self.observed().is_some() {
                return Err(self.invalid(
                    "noise.relative",
                    "`std`, `covariance` or a `std` column: with observed data there is no true \
                     parameter for a relative noise level to refer to",
                    "relative",
                ));
            }
        }
        if s.noise.is_some() || self.observed().is_some_and(|d| d.std.is_some()) {
            self.noise_model()?;
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

    /// `[pde]`: coefficients finite and in range, Dirichlet data, sources, the velocity's
    /// Reynolds number and inflow values.
    fn validate_pde(&self, pde: &PdeSpec) -> Result<()> {
        match pde {
            PdeSpec::Umbridge {
                url,
                name,
                timeout_s,
                ..
            } => {
                let urls = url.list();
                if urls.is_empty() {
                    return Err(self.invalid("pde.url", "at least one URL", "an empty list"));
                }
                if let Some(u) = urls.iter().find(|u| !u.starts_with("http://")) {
                    return Err(self.invalid(
                        "pde.url",
                        "an http:// URL such as \"http://127.0.0.1:4242\"",
                        format!("{u:?}"),
                    ));
                }
                if name.is_empty() {
                    return Err(self.invalid("pde.name", "a model name", "\"\""));
                }
                if let Some(t) = timeout_s {
                    if !(*t > 0.0 && t.is_finite()) {
                        return Err(self.invalid("pde.timeout_s", "a positive number", t));
                    }
                }
            }
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
                if self.spec.mesh.file.is_some() {
                    return Err(self.invalid(
                        "mesh.file",
                        "the structured unit square ([mesh] n = …): the convection field of \
                         convection_reaction_diffusion is driven by the square's four walls",
                        "a mesh file",
                    ));
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
        Ok(())
    }

    /// `[prior]`: γ, δ > 0, the anisotropy (θ₀, θ₁ > 0, α finite) and a finite mean.
    fn validate_prior(&self, p: &PriorSpec) -> Result<()> {
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
        Ok(())
    }

    pub(super) fn validate_dirichlet(&self, dirichlet: &BoundaryValues) -> Result<()> {
        let names = self.mesh_ref().boundary_names().join(", ");
        let entries = dirichlet.entries();
        if entries.is_empty() {
            return Err(self.invalid(
                "pde.dirichlet",
                &format!("a value on at least one boundary group ({names})"),
                "none",
            ));
        }
        if let Some((name, v)) = entries.iter().find(|(_, v)| !v.is_finite()) {
            return Err(self.invalid(&format!("pde.dirichlet.{name}"), "a finite number", v));
        }
        if let Some((name, _)) = entries
            .iter()
            .find(|(n, _)| self.mesh_ref().group_edges(n).is_none())
        {
            return Err(self.invalid(
                &format!("pde.dirichlet.{name}"),
                &format!("the name of a boundary group of the mesh: one of {names}"),
                name,
            ));
        }
        Ok(())
    }

    /// Checks that every point of a set lies in the domain; `name(i)` is the i-th point's field.
    fn points_inside(&self, points: &[[f64; 2]], name: impl Fn(usize) -> String) -> Result<()> {
        let mesh = self.mesh_ref();
        for (i, p) in points.iter().enumerate() {
            if mesh.locate(p[0], p[1]).is_none() {
                return Err(self.invalid(
                    &name(i),
                    &format!("{} (inside the domain)", mesh.point_expectation()),
                    format!("({}, {})", p[0], p[1]),
                ));
            }
        }
        Ok(())
    }

    /// The points of a point set given as a grid (x fastest) or a list, checked to lie in [0,1]²;
    /// `field` is the set's dotted path. Also returns the grid shape (nx, ny) for a grid.
    pub(super) fn point_set(
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
                let pts: Vec<[f64; 2]> = linspace(gy)
                    .into_iter()
                    .flat_map(|y| xs.iter().map(move |&x| [x, y]))
                    .collect();
                self.points_inside(&pts, |i| format!("{field} (grid point {i}, x fastest)"))?;
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
                self.points_inside(points, |i| format!("{field}.points[{i}]"))?;
                Ok((points.clone(), None))
            }
            _ => Err(self.invalid(
                field,
                "either both `grid_x` and `grid_y`, or `points`",
                "another combination",
            )),
        }
    }

    pub(super) fn observation_points_checked(&self) -> Result<Vec<[f64; 2]>> {
        match &self.spec.observations {
            None => Ok(Vec::new()),
            Some(o) if o.data.is_some() => {
                if o.grid_x.is_some() || o.grid_y.is_some() || o.points.is_some() {
                    return Err(self.invalid(
                        "observations",
                        "either `data` (a CSV file whose points are the observation points) or \
                         `grid_x`/`grid_y` or `points`",
                        "data and points",
                    ));
                }
                let Some(d) = self.observed() else {
                    return Ok(Vec::new()); // not read yet (files are read before validation)
                };
                let file = d.file.display().to_string();
                self.points_inside(&d.points, |i| {
                    format!("observations.data ({file}, data row {})", i + 1)
                })?;
                Ok(d.points.clone())
            }
            Some(o) => Ok(self
                .point_set("observations", &o.grid_x, &o.grid_y, &o.points)?
                .0),
        }
    }

    /// Centres and strengths of the mollified sources, validated.
    pub(super) fn sources(&self, spec: &SourcesSpec) -> Result<(Vec<[f64; 2]>, Vec<f64>)> {
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
    pub(super) fn control_sources(&self, spec: &ControlSpec) -> Result<Vec<[f64; 2]>> {
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
