//! Steady incompressible Navier–Stokes on the unit square, Taylor–Hood P2/P1 elements, Newton.
//!
//!   −(1/Re) Δv + (v·∇)v + ∇p = 0,   ∇·v = 0   in (0,1)²,   v = g on the boundary,
//!
//! weak form: find (v, p) with ∫ (1/Re) ∇v:∇w + ((v·∇)v)·w − p ∇·w − (∇·v) q dx = 0 for all (w, q),
//! w = 0 on the boundary; the pressure is fixed to 0 at the vertex (0, 0). Integrals use the
//! degree-5 rule, exact for the convective term. The Jacobian (Newton, not Picard) is factored
//! with sparse LU. Used to compute the convection field of the convection–reaction–diffusion
//! problem (hIPPYlib's advection–diffusion setting) and verified on the lid-driven cavity
//! against Ghia, Ghia & Shin (1982).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::fem::p2::P2Space;
use crate::fem::quadrature::DEGREE5;
use crate::fem::sparse::{LinearSolver, LuFactor};
use crate::fem::{Mesh, SparsePattern};
use crate::newton::{self, NewtonSettings, NonlinearSystem};

/// Boundary velocity g(x, y).
pub type BoundaryVelocity = Arc<dyn Fn(f64, f64) -> [f64; 2] + Send + Sync>;

/// A Navier–Stokes problem on the unit square.
#[derive(Clone)]
pub struct NavierStokesSettings {
    /// Reynolds number (> 0), with unit length and velocity scales: ν = 1/Re.
    pub reynolds: f64,
    /// Velocity on the boundary.
    pub boundary_velocity: BoundaryVelocity,
    /// Newton parameters.
    pub newton: NewtonSettings,
}

/// The discrete solution.
#[derive(Debug, Clone)]
pub struct FlowField {
    /// The P2 space the velocity lives in.
    pub space: P2Space,
    /// Velocity components at the P2 nodes.
    pub velocity: [Vec<f64>; 2],
    /// Pressure at the vertices (P1).
    pub pressure: Vec<f64>,
    /// Newton residual norms.
    pub residual_norms: Vec<f64>,
}

impl FlowField {
    /// Velocity at (x, y), or `None` outside the mesh.
    pub fn velocity_at(&self, mesh: &Mesh, x: f64, y: f64) -> Option<[f64; 2]> {
        Some([
            self.space.evaluate(mesh, &self.velocity[0], x, y)?,
            self.space.evaluate(mesh, &self.velocity[1], x, y)?,
        ])
    }
}

/// Global numbering of the 15 local unknowns of each triangle (6 v_x, 6 v_y, 3 p).
struct Numbering {
    space: P2Space,
    /// Unknown index of each P2 node's x velocity (y velocity: + num_free_nodes), `None` on the boundary.
    node_unknown: Vec<Option<usize>>,
    num_free_nodes: usize,
    /// Unknown index of each vertex's pressure, `None` for the pinned vertex 0.
    pressure_unknown: Vec<Option<usize>>,
    num_unknowns: usize,
}

impl Numbering {
    fn new(mesh: &Mesh) -> Self {
        let space = P2Space::new(mesh);
        let mut on_boundary = vec![false; space.num_nodes()];
        for k in space.boundary_nodes() {
            on_boundary[k] = true;
        }
        let mut next = 0;
        let node_unknown: Vec<Option<usize>> = on_boundary
            .iter()
            .map(|&b| {
                (!b).then(|| {
                    next += 1;
                    next - 1
                })
            })
            .collect();
        let num_free_nodes = next;
        let mut next = 2 * num_free_nodes;
        let pressure_unknown = (0..mesh.num_vertices())
            .map(|v| {
                (v != 0).then(|| {
                    next += 1;
                    next - 1
                })
            })
            .collect();
        Numbering {
            space,
            node_unknown,
            num_free_nodes,
            pressure_unknown,
            num_unknowns: next,
        }
    }

    fn unknown(&self, mesh: &Mesh, t: usize, a: usize) -> Option<usize> {
        match a {
            0..6 => self.node_unknown[self.space.triangle_nodes(t)[a]],
            6..12 => self.node_unknown[self.space.triangle_nodes(t)[a - 6]]
                .map(|i| i + self.num_free_nodes),
            _ => self.pressure_unknown[mesh.triangles()[t][a - 12]],
        }
    }
}

struct FlowSystem<'a> {
    mesh: &'a Mesh,
    numbering: &'a Numbering,
    pattern: SparsePattern,
    symbolic: faer::sparse::linalg::solvers::SymbolicLu<usize>,
    nu: f64,
    /// Boundary values of the velocity at every P2 node (zero inside).
    lift: [Vec<f64>; 2],
}

impl FlowSystem<'_> {
    /// Full nodal fields (velocity with boundary values, pressure) from the unknowns.
    fn fields(&self, x: &[f64]) -> ([Vec<f64>; 2], Vec<f64>) {
        let n = self.numbering;
        let mut v = self.lift.clone();
        for (k, u) in n.node_unknown.iter().enumerate() {
            if let Some(i) = u {
                v[0][k] = x[*i];
                v[1][k] = x[*i + n.num_free_nodes];
            }
        }
        let p = n
            .pressure_unknown
            .iter()
            .map(|u| u.map_or(0.0, |i| x[i]))
            .collect();
        (v, p)
    }

    /// Local residual (15) and, if asked, local Jacobian (15 × 15, row-major) of triangle t.
    fn element(
        &self,
        t: usize,
        v: &[Vec<f64>; 2],
        p: &[f64],
        residual: &mut [f64; 15],
        jacobian: Option<&mut [f64; 225]>,
    ) {
        let g = &self.mesh.geometry()[t];
        let nodes = self.numbering.space.triangle_nodes(t);
        let verts = self.mesh.triangles()[t];
        let vn = [nodes.map(|k| v[0][k]), nodes.map(|k| v[1][k])];
        let pn = verts.map(|k| p[k]);
        residual.fill(0.0);
        let mut jac = jacobian;
        if let Some(j) = jac.as_deref_mut() {
            j.fill(0.0);
        }
        for q in &DEGREE5 {
            let l = q.barycentric;
            let w = q.weight * g.area;
            let phi = P2Space::basis(l);
            let dphi = P2Space::basis_gradients(l, &g.grad);
            let vel = [0, 1].map(|i| (0..6).map(|a| phi[a] * vn[i][a]).sum::<f64>());
            // grad[i][j] = ∂v_i/∂x_j
            let grad =
                [0, 1].map(|i| [0, 1].map(|j| (0..6).map(|a| dphi[a][j] * vn[i][a]).sum::<f64>()));
            let pq: f64 = (0..3).map(|b| l[b] * pn[b]).sum();
            let div = grad[0][0] + grad[1][1];
            let conv = [0, 1].map(|i| vel[0] * grad[i][0] + vel[1] * grad[i][1]);
            for a in 0..6 {
                for i in 0..2 {
                    residual[6 * i + a] += w
                        * (self.nu * (grad[i][0] * dphi[a][0] + grad[i][1] * dphi[a][1])
                            + conv[i] * phi[a]
                            - pq * dphi[a][i]);
                }
            }
            for b in 0..3 {
                residual[12 + b] -= w * div * l[b];
            }
            if let Some(j) = jac.as_deref_mut() {
                for a in 0..6 {
                    for c in 0..6 {
                        let diff = self.nu * (dphi[c][0] * dphi[a][0] + dphi[c][1] * dphi[a][1]);
                        let adv = vel[0] * dphi[c][0] + vel[1] * dphi[c][1];
                        for i in 0..2 {
                            for k in 0..2 {
                                let mut value = phi[c] * grad[i][k] * phi[a];
                                if i == k {
                                    value += diff + adv * phi[a];
                                }
                                j[(6 * i + a) * 15 + 6 * k + c] += w * value;
                            }
                        }
                    }
                    for d in 0..3 {
                        for i in 0..2 {
                            j[(6 * i + a) * 15 + 12 + d] -= w * l[d] * dphi[a][i];
                            j[(12 + d) * 15 + 6 * i + a] -= w * dphi[a][i] * l[d];
                        }
                    }
                }
            }
        }
    }
}

impl NonlinearSystem for FlowSystem<'_> {
    fn residual(&self, x: &[f64]) -> Vec<f64> {
        let (v, p) = self.fields(x);
        let mut r = vec![0.0; self.numbering.num_unknowns];
        let mut local = [0.0; 15];
        for t in 0..self.mesh.num_triangles() {
            self.element(t, &v, &p, &mut local, None);
            for (a, value) in local.iter().enumerate() {
                if let Some(i) = self.numbering.unknown(self.mesh, t, a) {
                    r[i] += value;
                }
            }
        }
        r
    }

    fn factor_jacobian(&self, x: &[f64]) -> Result<Box<dyn LinearSolver>> {
        let (v, p) = self.fields(x);
        let mut values = self.pattern.zeros();
        let (mut local, mut jac) = ([0.0; 15], [0.0; 225]);
        for t in 0..self.mesh.num_triangles() {
            self.element(t, &v, &p, &mut local, Some(&mut jac));
            self.pattern.add_element(&mut values, t, &jac);
        }
        Ok(Box::new(LuFactor::new(
            &self.symbolic,
            &self.pattern,
            &values,
            "Navier–Stokes Jacobian",
        )?))
    }
}

/// Solves the steady Navier–Stokes equations on `mesh` by Newton's method from v = lift, p = 0.
pub fn solve_navier_stokes(mesh: &Mesh, settings: &NavierStokesSettings) -> Result<FlowField> {
    if !(settings.reynolds > 0.0 && settings.reynolds.is_finite()) {
        return Err(Error::invalid(
            "navier-stokes",
            "reynolds",
            "a positive number",
            settings.reynolds,
        ));
    }
    let numbering = Numbering::new(mesh);
    let pattern = SparsePattern::from_elements(
        numbering.num_unknowns,
        numbering.num_unknowns,
        mesh.num_triangles(),
        15,
        |t, a| numbering.unknown(mesh, t, a),
        |t, a| numbering.unknown(mesh, t, a),
    );
    let mut lift = [
        vec![0.0; numbering.space.num_nodes()],
        vec![0.0; numbering.space.num_nodes()],
    ];
    for k in numbering.space.boundary_nodes() {
        let c = numbering.space.coords()[k];
        let g = (settings.boundary_velocity)(c[0], c[1]);
        lift[0][k] = g[0];
        lift[1][k] = g[1];
    }
    let system = FlowSystem {
        mesh,
        numbering: &numbering,
        symbolic: pattern.symbolic_lu(),
        pattern,
        nu: 1.0 / settings.reynolds,
        lift,
    };
    let solution = newton::solve(
        &system,
        vec![0.0; numbering.num_unknowns],
        &settings.newton,
        "Navier–Stokes",
    )?;
    let (velocity, pressure) = system.fields(&solution.u);
    Ok(FlowField {
        space: numbering.space,
        velocity,
        pressure,
        residual_norms: solution.residual_norms,
    })
}
