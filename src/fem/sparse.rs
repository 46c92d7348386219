//! Sparse matrices of P1 finite elements and their direct solvers.
//!
//! [`DofMap`] numbers the unknowns (all vertices, or the vertices left free by Dirichlet
//! conditions). [`SparsePattern`] holds the matrix graph of those unknowns in compressed-column
//! form together with a scatter table (triangle, local row, local column) → value slot, so that
//! re-assembling a matrix for a new parameter is one pass over the triangles with no search and
//! no allocation. [`CholeskyFactor`] factors a symmetric positive definite matrix with faer:
//! the symbolic analysis (fill-reducing ordering, elimination tree) is done once per pattern,
//! the numeric factorization once per matrix, and each solve then costs two triangular solves.

use std::sync::Arc;

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::sparse::linalg::cholesky::{factorize_symbolic_cholesky, LltRef, SymbolicCholesky};
use faer::sparse::{SparseColMatRef, SymbolicSparseColMat};
use faer::{Conj, MatMut, Par, Side};
use rayon::prelude::*;

use super::mesh::Mesh;
use crate::error::{Error, Result};

/// Numbering of unknowns: which vertices carry a degree of freedom.
#[derive(Debug, Clone)]
pub struct DofMap {
    dof_of_vertex: Vec<Option<usize>>,
    vertex_of_dof: Vec<usize>,
}

impl DofMap {
    /// Every vertex is an unknown, in vertex order.
    pub fn all(num_vertices: usize) -> Self {
        DofMap {
            dof_of_vertex: (0..num_vertices).map(Some).collect(),
            vertex_of_dof: (0..num_vertices).collect(),
        }
    }

    /// Every vertex except those in `constrained` is an unknown, in vertex order.
    pub fn without(num_vertices: usize, constrained: &[usize]) -> Self {
        let mut is_constrained = vec![false; num_vertices];
        for &v in constrained {
            is_constrained[v] = true;
        }
        let mut dof_of_vertex = vec![None; num_vertices];
        let mut vertex_of_dof = Vec::with_capacity(num_vertices);
        for v in 0..num_vertices {
            if !is_constrained[v] {
                dof_of_vertex[v] = Some(vertex_of_dof.len());
                vertex_of_dof.push(v);
            }
        }
        DofMap {
            dof_of_vertex,
            vertex_of_dof,
        }
    }

    /// Number of unknowns.
    pub fn len(&self) -> usize {
        self.vertex_of_dof.len()
    }

    /// True when there are no unknowns.
    pub fn is_empty(&self) -> bool {
        self.vertex_of_dof.is_empty()
    }

    /// The unknown at vertex `v`, if `v` is free.
    pub fn dof(&self, v: usize) -> Option<usize> {
        self.dof_of_vertex[v]
    }

    /// The vertex of unknown `d`.
    pub fn vertex(&self, d: usize) -> usize {
        self.vertex_of_dof[d]
    }

    /// Writes the unknowns `free` into the nodal vector `full` (constrained entries untouched).
    pub fn scatter(&self, free: &[f64], full: &mut [f64]) {
        for (d, &v) in self.vertex_of_dof.iter().enumerate() {
            full[v] = free[d];
        }
    }

    /// The unknowns' entries of the nodal vector `full`.
    pub fn gather(&self, full: &[f64]) -> Vec<f64> {
        self.vertex_of_dof.iter().map(|&v| full[v]).collect()
    }
}

const NO_SLOT: usize = usize::MAX;

/// The sparsity pattern of P1 matrices on the unknowns of a [`DofMap`].
///
/// The pattern is structurally symmetric and stored in compressed-column form with sorted row
/// indices; values live in plain `Vec<f64>`s of length [`SparsePattern::nnz`] owned by the caller.
#[derive(Debug, Clone)]
pub struct SparsePattern {
    symbolic: SymbolicSparseColMat<usize>,
    /// slots[t][a][b]: value index of (row dof of vertex a, column dof of vertex b) of triangle t.
    slots: Vec<[[usize; 3]; 3]>,
}

impl SparsePattern {
    /// The square pattern of the unknowns `dofs` on `mesh`.
    pub fn new(mesh: &Mesh, dofs: &DofMap) -> Self {
        Self::rectangular(mesh, dofs, dofs)
    }

    /// The pattern of P1 couplings between the unknowns `rows` and the unknowns `cols`.
    pub fn rectangular(mesh: &Mesh, rows: &DofMap, cols: &DofMap) -> Self {
        let mut neighbours: Vec<Vec<usize>> = vec![Vec::with_capacity(7); cols.len()];
        for tri in mesh.triangles() {
            for &va in tri {
                if let Some(a) = rows.dof(va) {
                    for &vb in tri {
                        if let Some(b) = cols.dof(vb) {
                            neighbours[b].push(a);
                        }
                    }
                }
            }
        }
        let mut col_ptr = Vec::with_capacity(cols.len() + 1);
        let mut row_idx = Vec::new();
        col_ptr.push(0);
        for col in &mut neighbours {
            col.sort_unstable();
            col.dedup();
            row_idx.extend_from_slice(col);
            col_ptr.push(row_idx.len());
        }
        let symbolic =
            SymbolicSparseColMat::new_checked(rows.len(), cols.len(), col_ptr, None, row_idx);
        let mut pattern = SparsePattern {
            symbolic,
            slots: Vec::new(),
        };
        pattern.slots = mesh
            .triangles()
            .iter()
            .map(|tri| {
                let mut s = [[NO_SLOT; 3]; 3];
                for a in 0..3 {
                    for b in 0..3 {
                        if let (Some(r), Some(c)) = (rows.dof(tri[a]), cols.dof(tri[b])) {
                            s[a][b] = pattern
                                .slot(r, c)
                                .expect("triangle entries are in the pattern");
                        }
                    }
                }
                s
            })
            .collect();
        pattern
    }

    /// Matrix dimension of a square pattern.
    pub fn dim(&self) -> usize {
        self.symbolic.nrows()
    }

    /// Number of rows.
    pub fn nrows(&self) -> usize {
        self.symbolic.nrows()
    }

    /// Number of columns.
    pub fn ncols(&self) -> usize {
        self.symbolic.ncols()
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.symbolic.row_idx().len()
    }

    /// A zero value vector for this pattern.
    pub fn zeros(&self) -> Vec<f64> {
        vec![0.0; self.nnz()]
    }

    /// The value index of entry (row, col), if it is in the pattern.
    pub fn slot(&self, row: usize, col: usize) -> Option<usize> {
        let start = self.symbolic.col_ptr()[col];
        let rows = &self.symbolic.row_idx()[start..self.symbolic.col_ptr()[col + 1]];
        rows.binary_search(&row).ok().map(|k| start + k)
    }

    /// Adds the local 3×3 matrix of triangle `t` into `values` (entries of constrained vertices are skipped).
    #[inline]
    pub fn add_local(&self, values: &mut [f64], t: usize, local: &[[f64; 3]; 3]) {
        let s = &self.slots[t];
        for a in 0..3 {
            for b in 0..3 {
                if s[a][b] != NO_SLOT {
                    values[s[a][b]] += local[a][b];
                }
            }
        }
    }

    /// The matrix with these values, as a faer view.
    pub fn matrix<'a>(&'a self, values: &'a [f64]) -> SparseColMatRef<'a, usize, f64> {
        SparseColMatRef::new(self.symbolic.as_ref(), values)
    }

    /// y = A x for the matrix A with these values (x: ncols, y: nrows).
    pub fn mul(&self, values: &[f64], x: &[f64], y: &mut [f64]) {
        y.fill(0.0);
        let (col_ptr, row_idx) = (self.symbolic.col_ptr(), self.symbolic.row_idx());
        for (col, &xc) in x.iter().enumerate() {
            for k in col_ptr[col]..col_ptr[col + 1] {
                y[row_idx[k]] += values[k] * xc;
            }
        }
    }

    /// y = Aᵀ x for the matrix A with these values (x: nrows, y: ncols).
    pub fn mul_transpose(&self, values: &[f64], x: &[f64], y: &mut [f64]) {
        let (col_ptr, row_idx) = (self.symbolic.col_ptr(), self.symbolic.row_idx());
        for (col, yc) in y.iter_mut().enumerate() {
            let range = col_ptr[col]..col_ptr[col + 1];
            *yc = row_idx[range.clone()]
                .iter()
                .zip(&values[range])
                .map(|(&r, v)| v * x[r])
                .sum();
        }
    }

    /// Symbolic Cholesky analysis of this pattern (fill-reducing ordering), shared by every
    /// numeric factorization of a matrix with this pattern.
    pub fn symbolic_cholesky(&self) -> Arc<SymbolicCholesky<usize>> {
        Arc::new(
            factorize_symbolic_cholesky(
                self.symbolic.as_ref(),
                Side::Lower,
                Default::default(),
                Default::default(),
            )
            .expect("symbolic analysis of a mesh graph cannot fail"),
        )
    }
}

/// Numeric Cholesky factor A = L Lᵀ of a symmetric positive definite sparse matrix.
///
/// Factor once, then solve as often as needed; solves run sequentially so that callers can
/// parallelize over samples.
#[derive(Debug, Clone)]
pub struct CholeskyFactor {
    symbolic: Arc<SymbolicCholesky<usize>>,
    values: Vec<f64>,
}

impl CholeskyFactor {
    /// Factors the matrix `values` of `pattern` using the shared symbolic analysis.
    /// `what` names the matrix in the error raised when it is not positive definite.
    pub fn new(
        symbolic: &Arc<SymbolicCholesky<usize>>,
        pattern: &SparsePattern,
        values: &[f64],
        what: &str,
    ) -> Result<Self> {
        let mut l_values = vec![0.0; symbolic.len_val()];
        let par = Par::Seq;
        let mut mem =
            MemBuffer::new(symbolic.factorize_numeric_llt_scratch::<f64>(par, Default::default()));
        symbolic
            .factorize_numeric_llt(
                &mut l_values,
                pattern.matrix(values),
                Side::Lower,
                Default::default(),
                par,
                MemStack::new(&mut mem),
                Default::default(),
            )
            .map_err(|e| Error::numerical(what, format!("Cholesky factorization failed ({e:?}): the matrix is not positive definite")))?;
        Ok(CholeskyFactor {
            symbolic: Arc::clone(symbolic),
            values: l_values,
        })
    }

    /// Dimension of the factored matrix.
    pub fn dim(&self) -> usize {
        self.symbolic.nrows()
    }

    /// Overwrites `x` (length `dim`) with A⁻¹ x.
    pub fn solve_in_place(&self, x: &mut [f64]) {
        let n = self.dim();
        self.solve_many_in_place(x, x.len() / n.max(1));
    }

    /// Overwrites the `ncols` column-major right-hand sides in `x` with A⁻¹ x.
    ///
    /// Many columns are split into blocks solved in parallel (rayon), each block in one blocked
    /// pass over the factor; this composes with callers that already parallelize over samples.
    pub fn solve_many_in_place(&self, x: &mut [f64], ncols: usize) {
        let n = self.dim();
        assert_eq!(x.len(), n * ncols, "right-hand side has the wrong size");
        if ncols == 0 {
            return;
        }
        let threads = rayon::current_num_threads();
        const MIN_BLOCK: usize = 8;
        if threads > 1 && ncols >= 2 * MIN_BLOCK {
            let block = ncols.div_ceil(threads).max(MIN_BLOCK);
            x.par_chunks_mut(n * block)
                .for_each(|chunk| self.solve_block(chunk, chunk.len() / n));
        } else {
            self.solve_block(x, ncols);
        }
    }

    fn solve_block(&self, x: &mut [f64], ncols: usize) {
        let n = self.dim();
        let par = Par::Seq;
        let mut mem = MemBuffer::new(self.symbolic.solve_in_place_scratch::<f64>(ncols, par));
        let rhs = MatMut::from_column_major_slice_mut(x, n, ncols);
        LltRef::new(&self.symbolic, &self.values).solve_in_place_with_conj(
            Conj::No,
            rhs,
            par,
            MemStack::new(&mut mem),
        );
    }

    /// A⁻¹ b as a new vector.
    pub fn solve(&self, b: &[f64]) -> Vec<f64> {
        let mut x = b.to_vec();
        self.solve_in_place(&mut x);
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_mass_plus_stiffness_system() {
        let mesh = Mesh::unit_square(6);
        let dofs = DofMap::all(mesh.num_vertices());
        let pattern = SparsePattern::new(&mesh, &dofs);
        let mut values = pattern.zeros();
        for (t, g) in mesh.geometry().iter().enumerate() {
            let d = g.gradient_products();
            let mut local = [[0.0; 3]; 3];
            for a in 0..3 {
                for b in 0..3 {
                    local[a][b] = g.area * d[a][b] + g.area / 12.0 * if a == b { 2.0 } else { 1.0 };
                }
            }
            pattern.add_local(&mut values, t, &local);
        }
        let symbolic = pattern.symbolic_cholesky();
        let factor = CholeskyFactor::new(&symbolic, &pattern, &values, "test").unwrap();
        let x: Vec<f64> = (0..pattern.dim())
            .map(|i| (i as f64 * 0.37).sin())
            .collect();
        let mut b = vec![0.0; x.len()];
        pattern.mul(&values, &x, &mut b);
        let y = factor.solve(&b);
        let err = x
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-12, "{err}");
    }

    #[test]
    fn indefinite_matrix_is_an_error() {
        let mesh = Mesh::unit_square(2);
        let dofs = DofMap::all(mesh.num_vertices());
        let pattern = SparsePattern::new(&mesh, &dofs);
        let mut values = pattern.zeros();
        for t in 0..mesh.num_triangles() {
            pattern.add_local(
                &mut values,
                t,
                &[[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]],
            );
        }
        let symbolic = pattern.symbolic_cholesky();
        assert!(CholeskyFactor::new(&symbolic, &pattern, &values, "test").is_err());
    }
}
