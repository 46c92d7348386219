//! Convection–reaction–diffusion (paper §3.1.3, as in the paper's code):
//!
//!   −κ Δu + v·∇u + e^m u³ = f in (0,1)²,   u = 0 on the boundary,
//!
//! with a divergence-free velocity v from [`super::navier_stokes`] and streamline diffusion
//! ∫ τ (v·∇u)(v·∇p) dx, τ = h_T / |v| (h_T the triangle's diameter), as the paper's code. Residual
//! on the interior nodes (degree-4 quadrature, v evaluated exactly from its P2 representation):
//!   r_i = ∫ κ ∇u·∇φ_i + (v·∇u) φ_i + τ (v·∇u)(v·∇φ_i) + e^m u³ φ_i − f φ_i dx.
//! The first three terms form a constant matrix L (assembled once per model); the state Jacobian
//! A = L + 3 M_{e^m u²} is nonsymmetric (sparse LU, transposed solves for adjoints) and the
//! coupling is G_ai = ∫ e^m φ_a u³ φ_i dx. Stabilization enters the residual and so every derivative.

use std::time::Instant;

use super::navier_stokes::FlowField;
use super::{ForwardStats, ImplicitLinearization, SourceFn};
use crate::error::{check_finite_vector, Error, Result};
use crate::fem::assembly::{load_vector, nonlinear_load, nonlinear_mass};
use crate::fem::p2::P2Space;
use crate::fem::quadrature::DEGREE4;
use crate::fem::sparse::{LinearSolver, LuFactor};
use crate::fem::{DofMap, Mesh, PointObservation, SparsePattern};
use crate::newton::{self, NewtonSettings, NonlinearSystem};

/// What defines a convection–reaction–diffusion problem besides the mesh and the flow.
#[derive(Clone)]
pub struct ConvectionSettings {
    /// Diffusivity κ > 0.
    pub diffusivity: f64,
    /// Source f.
    pub source: SourceFn,
    /// Observation points.
    pub observation_points: Vec<[f64; 2]>,
    /// Newton parameters.
    pub newton: NewtonSettings,
}

/// The model on one mesh with one velocity field.
pub struct ConvectionModel {
    mesh: Mesh,
    newton: NewtonSettings,
    dofs: DofMap,
    pattern: SparsePattern,
    coupling_pattern: SparsePattern,
    symbolic: faer::sparse::linalg::solvers::SymbolicLu<usize>,
    observation: PointObservation,
    triangle_dofs: Vec<[Option<usize>; 3]>,
    /// L: diffusion + convection + streamline diffusion on the free nodes.
    linear_part: Vec<f64>,
    source_load: Vec<f64>,
    /// Velocity at the vertices, interleaved (v_x, v_y), for output.
    vertex_velocity: Vec<f64>,
}

impl ConvectionModel {
    /// Builds the model on `mesh` with the velocity `flow` (computed on the same mesh).
    pub fn new(mesh: Mesh, flow: &FlowField, settings: &ConvectionSettings) -> Result<Self> {
        let k = settings.diffusivity;
        if !(k > 0.0 && k.is_finite()) {
            return Err(Error::invalid(
                "convection_reaction_diffusion",
                "pde.diffusivity",
                "a positive number",
                k,
            ));
        }
        let observation =
            PointObservation::new(&mesh, &settings.observation_points).map_err(|e| {
                Error::invalid(
                    "convection_reaction_diffusion",
                    format!("observations point {}", e.index),
                    mesh.point_expectation(),
                    format!("({}, {})", e.point[0], e.point[1]),
                )
            })?;
        let boundary = mesh.boundary_vertices();
        let dofs = DofMap::without(mesh.num_vertices(), &boundary);
        let pattern = SparsePattern::new(&mesh, &dofs);
        let coupling_pattern =
            SparsePattern::rectangular(&mesh, &DofMap::all(mesh.num_vertices()), &dofs);
        let mut linear_part = pattern.zeros();
        for (t, (tri, g)) in mesh.triangles().iter().zip(mesh.geometry()).enumerate() {
            let nodes = flow.space.triangle_nodes(t);
            let h = (0..3)
                .map(|a| mesh.edge_length(tri[a], tri[(a + 1) % 3]))
                .fold(0.0, f64::max);
            let mut local = [[0.0; 3]; 3];
            for q in &DEGREE4 {
                let l = q.barycentric;
                let phi = P2Space::basis(l);
                let v = [0, 1].map(|i| {
                    (0..6)
                        .map(|a| phi[a] * flow.velocity[i][nodes[a]])
                        .sum::<f64>()
                });
                let speed = (v[0] * v[0] + v[1] * v[1]).sqrt();
                let tau = if speed > 1e-12 { h / speed } else { 0.0 };
                let w = q.weight * g.area;
                let v_grad = [0, 1, 2].map(|b| v[0] * g.grad[b][0] + v[1] * g.grad[b][1]);
                for a in 0..3 {
                    for b in 0..3 {
                        let diffusion =
                            k * (g.grad[b][0] * g.grad[a][0] + g.grad[b][1] * g.grad[a][1]);
                        local[a][b] +=
                            w * (diffusion + v_grad[b] * l[a] + tau * v_grad[b] * v_grad[a]);
                    }
                }
            }
            pattern.add_local(&mut linear_part, t, &local);
        }
        let source = settings.source.clone();
        let source_load = dofs.gather(&load_vector(&mesh, |x, y| source(x, y)));
        let vertex_velocity = (0..mesh.num_vertices())
            .flat_map(|v| [flow.velocity[0][v], flow.velocity[1][v]])
            .collect();
        let triangle_dofs = mesh
            .triangles()
            .iter()
            .map(|t| [dofs.dof(t[0]), dofs.dof(t[1]), dofs.dof(t[2])])
            .collect();
        Ok(ConvectionModel {
            symbolic: pattern.symbolic_lu(),
            mesh,
            newton: settings.newton,
            dofs,
            pattern,
            coupling_pattern,
            observation,
            triangle_dofs,
            linear_part,
            source_load,
            vertex_velocity,
        })
    }

    /// Solves the state equation at m and keeps the LU factor of A = ∂r/∂u.
    pub fn solve(&self, m: &[f64]) -> Result<ImplicitLinearization<'_>> {
        check_finite_vector(m, self.mesh.num_vertices(), "parameter", "m")?;
        let t0 = Instant::now();
        // e^m at the quadrature points of each triangle, times the quadrature weight and area
        let exp_m: Vec<[f64; 6]> = self
            .mesh
            .triangles()
            .iter()
            .zip(self.mesh.geometry())
            .map(|(tri, g)| {
                DEGREE4.map(|q| {
                    let l = q.barycentric;
                    q.weight
                        * g.area
                        * (l[0] * m[tri[0]] + l[1] * m[tri[1]] + l[2] * m[tri[2]]).exp()
                })
            })
            .collect();
        let assembly_s = t0.elapsed().as_secs_f64();
        let system = ConvectionSystem {
            model: self,
            exp_m: &exp_m,
        };
        let solution = newton::solve(
            &system,
            vec![0.0; self.dofs.len()],
            &self.newton,
            "convection_reaction_diffusion model",
        )?;
        let t1 = Instant::now();
        let mut state = vec![0.0; self.mesh.num_vertices()];
        self.dofs.scatter(&solution.u, &mut state);
        let output = self.observation.apply(&state);
        // G_T[a][b] = ∫_T e^m λ_a u³ λ_b
        let mut coupling = self.coupling_pattern.zeros();
        for (t, tri) in self.mesh.triangles().iter().enumerate() {
            let ut = [state[tri[0]], state[tri[1]], state[tri[2]]];
            let local = nonlinear_mass(&exp_m[t], ut, |u| u * u * u);
            self.coupling_pattern.add_local(&mut coupling, t, &local);
        }
        let [residual_s, factor_s, solve_s] = solution.seconds;
        let stats = ForwardStats {
            assembly_s: assembly_s + residual_s + t1.elapsed().as_secs_f64(),
            factorization_s: factor_s,
            solve_s,
            newton_iterations: solution.iterations(),
            residual_norms: solution.residual_norms.clone(),
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
            curvature: None,
        })
    }
}

struct ConvectionSystem<'a> {
    model: &'a ConvectionModel,
    /// w_q |T| e^{m(x_q)}
    exp_m: &'a [[f64; 6]],
}

impl NonlinearSystem for ConvectionSystem<'_> {
    fn residual(&self, u_free: &[f64]) -> Vec<f64> {
        let model = self.model;
        let mut r = vec![0.0; u_free.len()];
        model.pattern.mul(&model.linear_part, u_free, &mut r);
        r.iter_mut()
            .zip(&model.source_load)
            .for_each(|(r, f)| *r -= f);
        let mut u = vec![0.0; model.mesh.num_vertices()];
        model.dofs.scatter(u_free, &mut u);
        for (t, tri) in model.mesh.triangles().iter().enumerate() {
            let ut = [u[tri[0]], u[tri[1]], u[tri[2]]];
            let local = nonlinear_load(&self.exp_m[t], ut, |u| u * u * u);
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
        let mut values = model.linear_part.clone();
        let mut u = vec![0.0; model.mesh.num_vertices()];
        model.dofs.scatter(u_free, &mut u);
        for (t, tri) in model.mesh.triangles().iter().enumerate() {
            let ut = [u[tri[0]], u[tri[1]], u[tri[2]]];
            let local = nonlinear_mass(&self.exp_m[t], ut, |u| 3.0 * u * u);
            model.pattern.add_local(&mut values, t, &local);
        }
        Ok(Box::new(LuFactor::new(
            &model.symbolic,
            &model.pattern,
            &values,
            "convection_reaction_diffusion state operator ∂r/∂u",
        )?))
    }
}

implicit_pde_model!(
    ConvectionModel,
    |model| name: {
        let _ = model;
        "convection_reaction_diffusion"
    },
    auxiliary: vec![("velocity", 2, &model.vertex_velocity)]
);
