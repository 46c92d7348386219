//! A diffusion(–reaction) model with a control: the state u(z, m) solves
//!
//!   −∇·(e^m ∇u) + c u³ = f + Σ_k z_k φ_k,   φ_k(x) = exp(−‖x − x_k‖²/b²)/(2π b²),
//!
//! (SOUPy's semilinear elliptic benchmark with c = 1, f = 0, u = 0 on ∂Ω). With the residual
//! r(u, m) − F z = 0, F_ik = ∫ φ_k ψ_i dx on the free nodes, the control derivative is
//!   ∂u/∂z = A⁻¹ F,  (∂u/∂z)ᵀ w = Fᵀ A⁻ᵀ w,
//! one solve on the factor A = ∂r/∂u kept from the forward Newton solve (A is symmetric for these
//! models, so A⁻ᵀ = A⁻¹). The full control Jacobian (d_U × n_z) is one blocked n_z-column solve.

use ndarray::Array2;

use super::{DiffusionModel, ImplicitLinearization, PdeModel};
use crate::error::{check_finite_vector, Error, Result};
use crate::fem::assembly::{assemble_mass, load_vector};
use crate::fem::{DofMap, Mesh, SparsePattern};
use crate::map::{ControlledMap, Linearization};

/// The controlled model and its quantity of interest's ingredients (mass matrix, target).
pub struct ControlledDiffusion {
    model: DiffusionModel,
    /// F, column-major n_free × n_z (column k contiguous).
    control_loads: Vec<f64>,
    centers: Vec<[f64; 2]>,
    width: f64,
    bounds: [f64; 2],
    /// The P1 mass matrix on all vertices.
    mass_pattern: SparsePattern,
    mass: Vec<f64>,
    /// The target state ū interpolated at the vertices.
    target: Vec<f64>,
}

impl ControlledDiffusion {
    /// The model with sources of width `width` at `centers`, control bounds [lower, upper] and
    /// target ū(x, y).
    pub fn new(
        model: DiffusionModel,
        centers: &[[f64; 2]],
        width: f64,
        bounds: [f64; 2],
        target: impl Fn(f64, f64) -> f64,
    ) -> Result<Self> {
        let mesh = model.mesh();
        let control_loads = centers
            .iter()
            .flat_map(|&c| {
                let bump = super::mollified_sources(vec![c], vec![1.0], width);
                model.dofs().gather(&load_vector(mesh, |x, y| bump(x, y)))
            })
            .collect();
        let all = DofMap::all(mesh.num_vertices());
        let mass_pattern = SparsePattern::new(mesh, &all);
        let mass = assemble_mass(mesh, &mass_pattern);
        let target = mesh.vertices().iter().map(|v| target(v[0], v[1])).collect();
        Ok(ControlledDiffusion {
            control_loads,
            centers: centers.to_vec(),
            width,
            bounds,
            mass_pattern,
            mass,
            target,
            model,
        })
    }

    /// The underlying PDE model.
    pub fn model(&self) -> &DiffusionModel {
        &self.model
    }

    /// The mesh.
    pub fn mesh(&self) -> &Mesh {
        self.model.mesh()
    }

    /// Centres x_k of the control sources.
    pub fn centers(&self) -> &[[f64; 2]] {
        &self.centers
    }

    /// The control's source Σ_k z_k φ_k at the vertices (for plots).
    pub fn control_field(&self, z: &[f64]) -> Vec<f64> {
        let f = super::mollified_sources(self.centers.clone(), z.to_vec(), self.width);
        self.mesh()
            .vertices()
            .iter()
            .map(|v| f(v[0], v[1]))
            .collect()
    }

    /// Box bounds [lower, upper] of every control.
    pub fn bounds(&self) -> [f64; 2] {
        self.bounds
    }

    /// The QoI's target ū at the vertices.
    pub fn target(&self) -> &[f64] {
        &self.target
    }

    /// y = M x with the P1 mass matrix on all vertices.
    pub fn mass_mul(&self, x: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0; x.len()];
        self.mass_pattern.mul(&self.mass, x, &mut y);
        y
    }

    /// Solves for u(z, m), Newton started at `initial` (free nodes) when given.
    pub fn solve(
        &self,
        z: &[f64],
        m: &[f64],
        initial: Option<&[f64]>,
    ) -> Result<ControlledState<'_>> {
        let n_z = self.centers.len();
        check_finite_vector(z, n_z, "control", "z")?;
        let n = self.model.dofs().len();
        let mut load = vec![0.0; n];
        for (k, &zk) in z.iter().enumerate() {
            if zk != 0.0 {
                let column = &self.control_loads[k * n..(k + 1) * n];
                load.iter_mut().zip(column).for_each(|(l, f)| *l += zk * f);
            }
        }
        let inner = self.model.solve_with_load(m, Some(&load), initial)?;
        Ok(ControlledState { model: self, inner })
    }
}

/// The state at (z, m) with the factor of A kept for control derivatives.
pub struct ControlledState<'a> {
    model: &'a ControlledDiffusion,
    inner: ImplicitLinearization<'a>,
}

impl ControlledState<'_> {
    /// The state on the free nodes (a warm start for a nearby solve).
    pub fn free_state(&self) -> Vec<f64> {
        self.model.model.dofs().gather(&self.inner.state)
    }

    /// Newton iterations of the forward solve.
    pub fn newton_iterations(&self) -> usize {
        self.inner.stats.newton_iterations
    }
}

impl Linearization for ControlledState<'_> {
    /// The nodal state u(z, m) (the output of the controlled map, not the observable B u).
    #[allow(clippy::misnamed_getters)]
    fn output(&self) -> &[f64] {
        &self.inner.state
    }

    fn jvp(&self, v: &[f64]) -> Vec<f64> {
        let dofs = self.model.model.dofs();
        let n = dofs.len();
        let mut rhs = vec![0.0; n];
        for (k, &vk) in v.iter().enumerate() {
            let column = &self.model.control_loads[k * n..(k + 1) * n];
            rhs.iter_mut().zip(column).for_each(|(r, f)| *r += vk * f);
        }
        self.inner.solver.solve_in_place(&mut rhs);
        let mut du = vec![0.0; self.inner.state.len()];
        dofs.scatter(&rhs, &mut du);
        du
    }

    fn vjp(&self, w: &[f64]) -> Vec<f64> {
        let dofs = self.model.model.dofs();
        let n = dofs.len();
        let mut p = dofs.gather(w);
        self.inner.solver.solve_transpose_in_place(&mut p);
        self.model
            .control_loads
            .chunks(n)
            .map(|column| column.iter().zip(&p).map(|(f, p)| f * p).sum())
            .collect()
    }

    /// ∂u/∂z (d_U × n_z): A X = F as one blocked solve (A symmetric), rows of Dirichlet nodes 0.
    fn jacobian(&self) -> Array2<f64> {
        let dofs = self.model.model.dofs();
        let n_z = self.model.centers.len();
        let mut x = self.model.control_loads.clone();
        self.inner.solver.solve_transpose_many_in_place(&mut x, n_z);
        let mut jac = Array2::zeros((self.inner.state.len(), n_z));
        for (k, column) in x.chunks(dofs.len()).enumerate() {
            for (i, &value) in column.iter().enumerate() {
                jac[[dofs.vertex(i), k]] = value;
            }
        }
        jac
    }
}

impl ControlledMap for ControlledDiffusion {
    fn control_dim(&self) -> usize {
        self.centers.len()
    }
    fn parameter_dim(&self) -> usize {
        self.model.mesh().num_vertices()
    }
    fn output_dim(&self) -> usize {
        self.model.mesh().num_vertices()
    }
    fn linearize_control(&self, z: &[f64], m: &[f64]) -> Result<Box<dyn Linearization + '_>> {
        Ok(Box::new(self.solve(z, m, None)?))
    }
}

/// An error for a control vector of the wrong length or outside the bounds.
pub fn check_control(z: &[f64], n_z: usize, bounds: [f64; 2], what: &str) -> Result<()> {
    check_finite_vector(z, n_z, what, "z")?;
    if let Some((k, v)) = z
        .iter()
        .enumerate()
        .find(|(_, &v)| v < bounds[0] || v > bounds[1])
    {
        return Err(Error::invalid(
            what,
            format!("z[{k}]"),
            format!("a value in [{}, {}]", bounds[0], bounds[1]),
            v,
        ));
    }
    Ok(())
}
