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
    /// Number of local unknowns per element (3 for P1, 15 for Taylor–Hood P2/P1, ...).
    local: usize,
    /// slots[e·local² + a·local + b]: value index of (row unknown a, column unknown b) of element e,
    /// or `NO_SLOT` when either is constrained.
    slots: Vec<usize>,
}

impl SparsePattern {
    /// The square pattern of the unknowns `dofs` on `mesh`.
    pub fn new(mesh: &Mesh, dofs: &DofMap) -> Self {
        Self::rectangular(mesh, dofs, dofs)
    }

    /// The pattern of P1 couplings between the unknowns `rows` and the unknowns `cols`.
    pub fn rectangular(mesh: &Mesh, rows: &DofMap, cols: &DofMap) -> Self {
        let tris = mesh.triangles();
        Self::from_elements(
            rows.len(),
            cols.len(),
            tris.len(),
            3,
            |e, a| rows.dof(tris[e][a]),
            |e, b| cols.dof(tris[e][b]),
        )
    }

    /// The pattern of `num_elements` elements with `local` unknowns each; `row_of(e, a)` and
    /// `col_of(e, b)` give the global row / column of local unknown a / b (`None` if constrained).
    pub fn from_elements(
        nrows: usize,
        ncols: usize,
        num_elements: usize,
        local: usize,
        row_of: impl Fn(usize, usize) -> Option<usize>,
        col_of: impl Fn(usize, usize) -> Option<usize>,
    ) -> Self {
        // the element couplings (r, c) bucketed by column in one flat array (a counting pass,
        // then a filling pass: no allocation per column), each with its element entry
        // e·local² + a·local + b; then each column sorted and deduplicated, which gives every
        // entry its value slot without a search
        let couplings = |visit: &mut dyn FnMut(usize, usize, usize)| {
            for e in 0..num_elements {
                for a in 0..local {
                    if let Some(r) = row_of(e, a) {
                        for b in 0..local {
                            if let Some(c) = col_of(e, b) {
                                visit(r, c, (e * local + a) * local + b);
                            }
                        }
                    }
                }
            }
        };
        let mut start = vec![0usize; ncols + 1];
        couplings(&mut |_, c, _| start[c + 1] += 1);
        for c in 0..ncols {
            start[c + 1] += start[c];
        }
        let mut fill = start.clone();
        let mut bucketed = vec![(0usize, 0usize); start[ncols]];
        couplings(&mut |r, c, entry| {
            bucketed[fill[c]] = (r, entry);
            fill[c] += 1;
        });
        let mut slots = vec![NO_SLOT; num_elements * local * local];
        let mut col_ptr = Vec::with_capacity(ncols + 1);
        let mut row_idx = Vec::with_capacity(bucketed.len() / 2);
        col_ptr.push(0);
        for c in 0..ncols {
            let column = &mut bucketed[start[c]..start[c + 1]];
            column.sort_unstable_by_key(|&(r, _)| r);
            let mut last = None;
            for &(r, entry) in column.iter() {
                if last != Some(r) {
                    row_idx.push(r);
                    last = Some(r);
                }
                slots[entry] = row_idx.len() - 1;
            }
            col_ptr.push(row_idx.len());
        }
        let symbolic = SymbolicSparseColMat::new_checked(nrows, ncols, col_ptr, None, row_idx);
        SparsePattern {
            symbolic,
            local,
            slots,
        }
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
        debug_assert_eq!(self.local, 3);
        let s = &self.slots[9 * t..9 * t + 9];
        for a in 0..3 {
            for b in 0..3 {
                let k = s[3 * a + b];
                if k != NO_SLOT {
                    values[k] += local[a][b];
                }
            }
        }
    }

    /// Adds the row-major local matrix of element `e` (local × local values) into `values`.
    #[inline]
    pub fn add_element(&self, values: &mut [f64], e: usize, local: &[f64]) {
        let n2 = self.local * self.local;
        for (&k, &v) in self.slots[n2 * e..n2 * (e + 1)].iter().zip(local) {
            if k != NO_SLOT {
                values[k] += v;
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
    /// numeric factorization of a matrix with this pattern. Always supernodal: faer's automatic
    /// choice picks the simplicial factorization at n = 128, which measured 1.7× slower there
    /// (18.9 vs 11.3 ms per Poisson forward solve); supernodal multi-column solves are ~15% slower
    /// at n ≤ 128, a smaller loss, and Newton repeats the factorization every iteration.
    pub fn symbolic_cholesky(&self) -> Arc<SymbolicCholesky<usize>> {
        self.symbolic_cholesky_with(faer::sparse::linalg::SupernodalThreshold::FORCE_SUPERNODAL)
    }

    /// Symbolic analysis for a matrix factored once and solved with one right-hand side at a
    /// time, many times (the prior's A and M in sampling and MCMC): simplicial, whose
    /// single-column solves measured 1.8× / 1.5× / 2.5× faster than the supernodal ones at
    /// n = 64 / 128 / 256 (113 vs 204 µs, 0.58 vs 0.89 ms, 3.3 vs 8.3 ms; bench
    /// `cholesky_single_solve`), for a factorization 1.2× / 1.9× / 3.0× slower, paid once.
    pub fn symbolic_cholesky_for_solves(&self) -> Arc<SymbolicCholesky<usize>> {
        self.symbolic_cholesky_with(faer::sparse::linalg::SupernodalThreshold::FORCE_SIMPLICIAL)
    }

    fn symbolic_cholesky_with(
        &self,
        threshold: faer::sparse::linalg::SupernodalThreshold,
    ) -> Arc<SymbolicCholesky<usize>> {
        Arc::new(
            factorize_symbolic_cholesky(
                self.symbolic.as_ref(),
                Side::Lower,
                Default::default(),
                faer::sparse::linalg::cholesky::CholeskySymbolicParams {
                    supernodal_flop_ratio_threshold: threshold,
                    ..Default::default()
                },
            )
            .expect("symbolic analysis of a mesh graph cannot fail"),
        )
    }
}

/// A factored square matrix: solves with A and with Aᵀ.
pub trait LinearSolver: Send + Sync {
    /// Dimension.
    fn dim(&self) -> usize;
    /// x ← A⁻¹ x
    fn solve_in_place(&self, x: &mut [f64]);
    /// x ← A⁻ᵀ x for `ncols` column-major right-hand sides.
    fn solve_transpose_many_in_place(&self, x: &mut [f64], ncols: usize);
    /// x ← A⁻ᵀ x
    fn solve_transpose_in_place(&self, x: &mut [f64]) {
        self.solve_transpose_many_in_place(x, 1);
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
        // sequential: measured no faster in parallel on 2 cores up to n = 128 and slower at 256
        // (60 vs 83 ms); callers parallelize over samples instead
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
    fn lu_solves_a_nonsymmetric_system_and_its_transpose() {
        let mesh = Mesh::unit_square(5);
        let dofs = DofMap::all(mesh.num_vertices());
        let pattern = SparsePattern::new(&mesh, &dofs);
        let mut values = pattern.zeros();
        for (t, g) in mesh.geometry().iter().enumerate() {
            let d = g.gradient_products();
            let mut local = [[0.0; 3]; 3];
            for a in 0..3 {
                for b in 0..3 {
                    // diffusion + a convection-like skew part + mass
                    local[a][b] = g.area * (d[a][b] + 0.3 * (g.grad[b][0] - g.grad[a][1]))
                        + g.area / 6.0 * if a == b { 1.0 } else { 0.5 };
                }
            }
            pattern.add_local(&mut values, t, &local);
        }
        let lu = LuFactor::new(&pattern.symbolic_lu(), &pattern, &values, "test").unwrap();
        let x: Vec<f64> = (0..pattern.dim()).map(|i| (i as f64 * 0.7).cos()).collect();
        let mut b = vec![0.0; x.len()];
        pattern.mul(&values, &x, &mut b);
        lu.solve_in_place(&mut b);
        assert!(x.iter().zip(&b).all(|(a, b)| (a - b).abs() < 1e-10));
        pattern.mul_transpose(&values, &x, &mut b);
        lu.solve_transpose_in_place(&mut b);
        assert!(x.iter().zip(&b).all(|(a, b)| (a - b).abs() < 1e-10));
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

impl LinearSolver for CholeskyFactor {
    fn dim(&self) -> usize {
        CholeskyFactor::dim(self)
    }
    fn solve_in_place(&self, x: &mut [f64]) {
        CholeskyFactor::solve_in_place(self, x)
    }
    fn solve_transpose_many_in_place(&self, x: &mut [f64], ncols: usize) {
        self.solve_many_in_place(x, ncols)
    }
}

/// Sparse LU factor P A Q = L U of a nonsymmetric matrix (faer), with the symbolic analysis shared
/// by every matrix of one pattern.
#[derive(Debug)]
pub struct LuFactor {
    lu: faer::sparse::linalg::solvers::Lu<usize, f64>,
    dim: usize,
}

impl SparsePattern {
    /// Symbolic LU analysis of this (square) pattern.
    pub fn symbolic_lu(&self) -> faer::sparse::linalg::solvers::SymbolicLu<usize> {
        faer::sparse::linalg::solvers::SymbolicLu::try_new(self.symbolic.as_ref())
            .expect("symbolic LU analysis of a mesh graph cannot fail")
    }
}

impl LuFactor {
    /// Factors the matrix `values` of `pattern`; `what` names it in the error for a singular matrix.
    pub fn new(
        symbolic: &faer::sparse::linalg::solvers::SymbolicLu<usize>,
        pattern: &SparsePattern,
        values: &[f64],
        what: &str,
    ) -> Result<Self> {
        let lu = faer::sparse::linalg::solvers::Lu::try_new_with_symbolic(
            symbolic.clone(),
            pattern.matrix(values),
        )
        .map_err(|e| {
            Error::numerical(
                what,
                format!("LU factorization failed ({e:?}): the matrix is singular"),
            )
        })?;
        Ok(LuFactor {
            lu,
            dim: pattern.dim(),
        })
    }
}

impl LinearSolver for LuFactor {
    fn dim(&self) -> usize {
        self.dim
    }
    fn solve_in_place(&self, x: &mut [f64]) {
        use faer::linalg::solvers::Solve;
        let n = self.dim;
        self.lu
            .solve_in_place(MatMut::from_column_major_slice_mut(x, n, 1));
    }
    fn solve_transpose_many_in_place(&self, x: &mut [f64], ncols: usize) {
        use faer::linalg::solvers::Solve;
        let n = self.dim;
        self.lu
            .solve_transpose_in_place(MatMut::from_column_major_slice_mut(x, n, ncols));
    }
}
