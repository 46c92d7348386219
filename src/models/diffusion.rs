//! Log-normal diffusion with an optional cubic reaction: the Poisson problem (paper §3.1.1,
//! hIPPYlib's subsurface tutorial) and the nonlinear reaction–diffusion problem (paper §3.1.2).
//!
//!   −∇·(e^m ∇u) + c u³ = f in Ω = (0,1)²,  u = g on the Dirichlet sides,  e^m ∂u/∂n = 0 elsewhere,
//!
//! with m and u piecewise linear (P1), c ≥ 0 (c = 0 is the linear Poisson problem) and q = B u.
//! Residual on the free nodes, with W_T(m) = ∫_T e^m dx and D_T = (∇λ_a·∇λ_b)_{ab}:
//!   r_i(u, m) = Σ_T W_T (D_T u_T)_i + c ∫ u³ φ_i dx − ∫ f φ_i dx,
//! state Jacobian A = ∂r/∂u = K(m) + 3c M_{u²} (symmetric positive definite: Cholesky), and
//! coupling G = (∂r/∂m)ᵀ with G_ai = Σ_{T ∋ a,i} ∂W_T/∂m_a (D_T u_T)_i. All integrals use the degree-4
//! rule, which integrates u³φ and u²φφ exactly; e^m is evaluated at its quadrature points.

use std::sync::Arc;
use std::time::Instant;

use super::{ForwardStats, ImplicitLinearization};
use crate::error::{check_finite_vector, Error, Result};
use crate::fem::assembly::{load_vector, nonlinear_load, nonlinear_mass, ExpCoefficient};
use crate::fem::quadrature::DEGREE4;
use crate::fem::sparse::{CholeskyFactor, LinearSolver};
use crate::fem::{DofMap, Mesh, PointObservation, SparsePattern};
use crate::newton::{self, NewtonSettings, NonlinearSystem};

/// A source term f(x, y).
pub type SourceFn = Arc<dyn Fn(f64, f64) -> f64 + Send + Sync>;

/// Σ_k s_k a exp(−‖x − x_k‖² / b²) with a = 1/(2π b²), b = `width` (the paper code's "wells";
/// note b², not 2b², in the exponent: each bump integrates to s_k / 2).
pub fn mollified_sources(centers: Vec<[f64; 2]>, strengths: Vec<f64>, width: f64) -> SourceFn {
    let a = 1.0 / (2.0 * std::f64::consts::PI * width * width);
    Arc::new(move |x, y| {
        centers
            .iter()
            .zip(&strengths)
            .map(|(c, s)| {
                s * a * (-((x - c[0]).powi(2) + (y - c[1]).powi(2)) / (width * width)).exp()
            })
            .sum()
    })
}

/// What defines a diffusion(–reaction) problem besides the mesh.
#[derive(Clone)]
pub struct DiffusionSettings {
    /// Model name reported to users ("poisson", "reaction_diffusion").
    pub name: &'static str,
    /// Coefficient c ≥ 0 of the cubic reaction term.
    pub reaction: f64,
    /// Source f, or `None` for f = 0.
    pub source: Option<SourceFn>,
    /// Dirichlet value on each constrained boundary group, by name (`left` … `top` on the unit
    /// square, physical curve names on a Gmsh mesh); where two groups meet, the later one wins.
    pub dirichlet: Vec<(String, f64)>,
    /// Observation points.
    pub observation_points: Vec<[f64; 2]>,
    /// Newton parameters (used when c > 0).
    pub newton: NewtonSettings,
}

/// The model on one mesh: patterns, symbolic factorization, lifting and B are built once here
/// and shared by every solve.
pub struct DiffusionModel {
    name: &'static str,
    reaction: f64,
    newton: NewtonSettings,
    mesh: Mesh,
    dofs: DofMap,
    /// Nodal vector holding the Dirichlet values g (zero at free nodes).
    lift: Vec<f64>,
    /// ∫ f φ_i on the free nodes.
    source_load: Vec<f64>,
    pattern: SparsePattern,
    /// Pattern of G = (∂r/∂m)ᵀ: rows all vertices, columns the free nodes.
    coupling_pattern: SparsePattern,
    symbolic: Arc<faer::sparse::linalg::cholesky::SymbolicCholesky<usize>>,
    observation: PointObservation,
    /// For each triangle, the unknown (if any) of each of its vertices.
    triangle_dofs: Vec<[Option<usize>; 3]>,
    /// c w_q |T| at the degree-4 quadrature points of each triangle.
    reaction_weights: Vec<[f64; 6]>,
}

impl DiffusionModel {
    /// Builds the model on `mesh`. Observation points must lie in the unit square.
    pub fn new(mesh: Mesh, settings: &DiffusionSettings) -> Result<Self> {
        let observation =
            PointObservation::new(&mesh, &settings.observation_points).map_err(|e| {
                Error::invalid(
                    settings.name,
                    format!("observations point {}", e.index),
                    mesh.point_expectation(),
                    format!("({}, {})", e.point[0], e.point[1]),
                )
            })?;
        if !(settings.reaction >= 0.0 && settings.reaction.is_finite()) {
            return Err(Error::invalid(
                settings.name,
                "pde.reaction",
                "a non-negative number",
                settings.reaction,
            ));
        }
        let mut lift = vec![0.0; mesh.num_vertices()];
        let mut constrained = Vec::new();
        for (name, value) in &settings.dirichlet {
            let vertices = mesh.group_vertices(name).ok_or_else(|| {
                Error::invalid(
                    settings.name,
                    format!("pde.dirichlet.{name}"),
                    format!(
                        "the name of a boundary group of the mesh ({})",
                        mesh.boundary_names().join(", ")
                    ),
                    name,
                )
            })?;
            for v in vertices {
                let value = *value;
                lift[v] = value;
                constrained.push(v);
            }
        }
        let dofs = DofMap::without(mesh.num_vertices(), &constrained);
        if dofs.len() == mesh.num_vertices() {
            return Err(Error::invalid(
                settings.name,
                "pde.dirichlet",
                "at least one Dirichlet side (the pure Neumann problem is singular)",
                "none",
            ));
        }
        let pattern = SparsePattern::new(&mesh, &dofs);
        let coupling_pattern =
            SparsePattern::rectangular(&mesh, &DofMap::all(mesh.num_vertices()), &dofs);
        let symbolic = pattern.symbolic_cholesky();
        let source_load = match &settings.source {
            None => vec![0.0; dofs.len()],
            Some(f) => dofs.gather(&load_vector(&mesh, |x, y| f(x, y))),
        };
        let triangle_dofs = mesh
            .triangles()
            .iter()
            .map(|t| [dofs.dof(t[0]), dofs.dof(t[1]), dofs.dof(t[2])])
            .collect();
        let reaction_weights = mesh
            .geometry()
            .iter()
            .map(|g| DEGREE4.map(|q| settings.reaction * q.weight * g.area))
            .collect();
        Ok(DiffusionModel {
            reaction_weights,
            name: settings.name,
            reaction: settings.reaction,
            newton: settings.newton,
            mesh,
            dofs,
            lift,
            source_load,
            pattern,
            coupling_pattern,
            symbolic,
            observation,
            triangle_dofs,
        })
    }

    /// Number of unknowns after eliminating Dirichlet nodes.
    pub fn num_unknowns(&self) -> usize {
        self.dofs.len()
    }

    /// Solves the state equation at m and keeps the factorization of A = ∂r/∂u.
    pub fn solve(&self, m: &[f64]) -> Result<ImplicitLinearization<'_>> {
        self.solve_with_load(m, None, None)
    }

    /// The free nodes of the state (Dirichlet nodes eliminated).
    pub fn dofs(&self) -> &DofMap {
        &self.dofs
    }

    /// Solves the state equation with `extra_load` (on the free nodes) added to ∫ f φ_i, i.e.
    /// r(u, m) − extra_load = 0, Newton started at `initial` (free nodes; zero when `None`).
    pub fn solve_with_load(
        &self,
        m: &[f64],
        extra_load: Option<&[f64]>,
        initial: Option<&[f64]>,
    ) -> Result<ImplicitLinearization<'_>> {
        check_finite_vector(m, self.mesh.num_vertices(), "parameter", "m")?;
        let load: std::borrow::Cow<'_, [f64]> = match extra_load {
            None => std::borrow::Cow::Borrowed(&self.source_load),
            Some(extra) => std::borrow::Cow::Owned(
                self.source_load
                    .iter()
                    .zip(extra)
                    .map(|(f, e)| f + e)
                    .collect(),
            ),
        };
        let t0 = Instant::now();
        let coefficient = ExpCoefficient::new(&self.mesh, m);
        let mut stiffness = self.pattern.zeros();
        for (t, g) in self.mesh.geometry().iter().enumerate() {
            let d = g.gradient_products();
            let w = coefficient.integral[t];
            self.pattern
                .add_local(&mut stiffness, t, &d.map(|row| row.map(|x| w * x)));
        }
        let assembly_s = t0.elapsed().as_secs_f64();
        let system = DiffusionSystem {
            model: self,
            coefficient: &coefficient,
            stiffness: &stiffness,
            load: &load,
        };
        let what = format!("{} model", self.name);
        let u0 = initial.map_or_else(|| vec![0.0; self.dofs.len()], <[f64]>::to_vec);
        let solution = newton::solve(&system, u0, &self.newton, &what)?;
        let t1 = Instant::now();
        let state = system.full_state(&solution.u);
        let output = self.observation.apply(&state);
        // G = (∂r/∂m)ᵀ, local G_T[a][b] = ∂W_T/∂m_a (D_T u_T)_b
        let mut coupling = self.coupling_pattern.zeros();
        for (t, (tri, g)) in self
            .mesh
            .triangles()
            .iter()
            .zip(self.mesh.geometry())
            .enumerate()
        {
            let d = g.gradient_products();
            let u = [state[tri[0]], state[tri[1]], state[tri[2]]];
            let c = [0, 1, 2].map(|a| d[a][0] * u[0] + d[a][1] * u[1] + d[a][2] * u[2]);
            let dw = coefficient.derivative[t];
            self.coupling_pattern
                .add_local(&mut coupling, t, &dw.map(|w| c.map(|ci| w * ci)));
        }
        let [residual_s, factor_s, solve_s] = solution.seconds;
        let linear = self.reaction == 0.0;
        let stats = ForwardStats {
            assembly_s: assembly_s + residual_s + t1.elapsed().as_secs_f64(),
            factorization_s: factor_s,
            solve_s,
            newton_iterations: if linear { 0 } else { solution.iterations() },
            residual_norms: if linear {
                Vec::new()
            } else {
                solution.residual_norms.clone()
            },
        };
        Ok(ImplicitLinearization {
            observation: &self.observation,
            dofs: &self.dofs,
            coupling_pattern: &self.coupling_pattern,
            coupling,
            solver: solution.factor,
            state,
            output,
            stats,
            adjoint_cache: std::sync::Mutex::new(None),
            curvature: Some(Box::new(DiffusionCurvature {
                model: self,
                m: m.to_vec(),
                exp_weights: std::sync::OnceLock::new(),
            })),
        })
    }
}

/// Second derivatives of ℓ = pᵀ r(u, m) = Σ_T W_T(m) p_Tᵀ D_T u_T + c Σ_T Σ_q ω_q u_q³ p_q
/// (ω_q = w_q |T|, values at the degree-4 points), with W_T = |T| Σ_q w_q e^{m_q}:
///   ℒ_um v = Σ_T (∇W_T·v_T) D_T p_T,           ℒ_uu û = Σ_T Σ_q 6c ω_q u_q û_q p_q λ_q,
///   ℒ_mu û = Σ_T ∇W_T (p_Tᵀ D_T û_T),          ℒ_mm v = Σ_T (∇²W_T v_T) (p_Tᵀ D_T u_T),
/// where ∂_a W_T = |T| Σ_q w_q e^{m_q} λ_a and ∂²_ab W_T = |T| Σ_q w_q e^{m_q} λ_a λ_b.
struct DiffusionCurvature<'a> {
    model: &'a DiffusionModel,
    m: Vec<f64>,
    /// e^{m_q} w_q |T| per triangle, computed at the first Hessian action and kept.
    exp_weights: std::sync::OnceLock<Vec<[f64; 6]>>,
}

impl DiffusionCurvature<'_> {
    fn exp_weights(&self) -> &[[f64; 6]] {
        self.exp_weights.get_or_init(|| {
            let mesh = &self.model.mesh;
            mesh.triangles()
                .iter()
                .zip(mesh.geometry())
                .map(|(tri, g)| exp_weights(at(&self.m, tri), g.area))
                .collect()
        })
    }
}

/// (e^{m_q} w_q |T|) at the degree-4 points of a triangle with nodal values `mv`.
fn exp_weights(mv: [f64; 3], area: f64) -> [f64; 6] {
    let mut e = [0.0; 6];
    for (eq, q) in e.iter_mut().zip(&DEGREE4) {
        let l = q.barycentric;
        *eq = area * q.weight * (l[0] * mv[0] + l[1] * mv[1] + l[2] * mv[2]).exp();
    }
    e
}

/// Σ_b d_ab x_b
fn local_mul(d: &[[f64; 3]; 3], x: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|a| d[a][0] * x[0] + d[a][1] * x[1] + d[a][2] * x[2])
}

fn at(values: &[f64], tri: &[usize; 3]) -> [f64; 3] {
    [values[tri[0]], values[tri[1]], values[tri[2]]]
}

fn dot3(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

impl super::implicit::ResidualCurvature for DiffusionCurvature<'_> {
    fn state_rows(&self, state: &[f64], p: &[f64], u_hat: &[f64], v: &[f64]) -> Vec<f64> {
        let model = self.model;
        let weights = self.exp_weights();
        let mut out = vec![0.0; model.dofs.len()];
        for (t, (tri, g)) in model
            .mesh
            .triangles()
            .iter()
            .zip(model.mesh.geometry())
            .enumerate()
        {
            let e = &weights[t];
            let vt = at(v, tri);
            let dwv: f64 = DEGREE4
                .iter()
                .zip(e)
                .map(|(q, eq)| eq * dot3(q.barycentric, vt))
                .sum();
            let pt = at(p, tri);
            let mut local = local_mul(&g.gradient_products(), pt).map(|x| dwv * x);
            if model.reaction != 0.0 {
                let (ut, ht) = (at(state, tri), at(u_hat, tri));
                for (q, w) in DEGREE4.iter().zip(&model.reaction_weights[t]) {
                    let l = q.barycentric;
                    let s = 6.0 * w * dot3(l, ut) * dot3(l, ht) * dot3(l, pt);
                    for a in 0..3 {
                        local[a] += s * l[a];
                    }
                }
            }
            for a in 0..3 {
                if let Some(i) = model.triangle_dofs[t][a] {
                    out[i] += local[a];
                }
            }
        }
        out
    }

    fn parameter_rows(&self, state: &[f64], p: &[f64], u_hat: &[f64], v: &[f64]) -> Vec<f64> {
        let model = self.model;
        let weights = self.exp_weights();
        let mut out = vec![0.0; model.mesh.num_vertices()];
        for ((tri, g), e) in model
            .mesh
            .triangles()
            .iter()
            .zip(model.mesh.geometry())
            .zip(weights)
        {
            let d = g.gradient_products();
            let pt = at(p, tri);
            let p_d_uhat = dot3(pt, local_mul(&d, at(u_hat, tri)));
            let p_d_u = dot3(pt, local_mul(&d, at(state, tri)));
            let vt = at(v, tri);
            for (q, eq) in DEGREE4.iter().zip(e) {
                let l = q.barycentric;
                // ∂_a W part with û, ∂²_ab W v_b part with u
                let s = eq * (p_d_uhat + dot3(l, vt) * p_d_u);
                for a in 0..3 {
                    out[tri[a]] += s * l[a];
                }
            }
        }
        out
    }
}

/// r(u) = 0 for one parameter: the stiffness K(m) is assembled once, the reaction per iterate.
struct DiffusionSystem<'a> {
    model: &'a DiffusionModel,
    coefficient: &'a ExpCoefficient,
    stiffness: &'a [f64],
    /// ∫ f φ_i on the free nodes (the source, plus any control).
    load: &'a [f64],
}

impl DiffusionSystem<'_> {
    fn full_state(&self, u_free: &[f64]) -> Vec<f64> {
        let mut u = self.model.lift.clone();
        self.model.dofs.scatter(u_free, &mut u);
        u
    }
}

impl NonlinearSystem for DiffusionSystem<'_> {
    fn residual(&self, u_free: &[f64]) -> Vec<f64> {
        let model = self.model;
        let u = self.full_state(u_free);
        let mut r: Vec<f64> = self.load.iter().map(|f| -f).collect();
        for (t, (tri, g)) in model
            .mesh
            .triangles()
            .iter()
            .zip(model.mesh.geometry())
            .enumerate()
        {
            let ut = [u[tri[0]], u[tri[1]], u[tri[2]]];
            let d = g.gradient_products();
            let w = self.coefficient.integral[t];
            let mut local =
                [0, 1, 2].map(|a| w * (d[a][0] * ut[0] + d[a][1] * ut[1] + d[a][2] * ut[2]));
            if model.reaction != 0.0 {
                let reaction = nonlinear_load(&model.reaction_weights[t], ut, |u| u * u * u);
                for a in 0..3 {
                    local[a] += reaction[a];
                }
            }
            for a in 0..3 {
                if let Some(i) = model.triangle_dofs[t][a] {
                    r[i] += local[a];
                }
            }
        }
        r
    }

    fn factor_jacobian(&self, u_free: &[f64]) -> Result<Box<dyn LinearSolver>> {
        let model = self.model;
        let mut values = self.stiffness.to_vec();
        if model.reaction != 0.0 {
            let u = self.full_state(u_free);
            for (t, tri) in model.mesh.triangles().iter().enumerate() {
                let ut = [u[tri[0]], u[tri[1]], u[tri[2]]];
                let local = nonlinear_mass(&model.reaction_weights[t], ut, |u| 3.0 * u * u);
                model.pattern.add_local(&mut values, t, &local);
            }
        }
        let what = format!("{} state operator ∂r/∂u", model.name);
        Ok(Box::new(CholeskyFactor::new(
            &model.symbolic,
            &model.pattern,
            &values,
            &what,
        )?))
    }

    fn is_linear(&self) -> bool {
        self.model.reaction == 0.0
    }
}

implicit_pde_model!(DiffusionModel, |model| name: model.name, auxiliary: {
    let _ = model;
    Vec::new()
});
