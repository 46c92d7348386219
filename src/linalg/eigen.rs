//! Randomized double-pass eigensolver for the generalized symmetric problem A v = λ B v
//! (Halko–Martinsson–Tropp; Saibaba–Lee–Kitanidis 2016; hIPPYlib's `doublePassG`).
//!
//! With a Gaussian test matrix Ω (n × (k + p)): Y = B⁻¹ A Ω; Q = B-orthonormal basis of range(Y);
//! T = Qᵀ A Q (small, dense); T = W Λ Wᵀ; U = Q W. Then Uᵀ B U = I and A U ≈ B U Λ, exactly when
//! rank(A) ≤ k + p. Costs 2(k + p) applications of A and (k + p) of B⁻¹, all as blocks.
//! Operators act on blocks of column vectors (n × l arrays) so that callers can batch their work.

use faer::Side;
use ndarray::{Array1, Array2, Axis};
use rand::Rng;
use rand_distr::StandardNormal;

/// A block operator X (n × l) ↦ Op X (n × l).
pub type BlockOp<'a> = &'a (dyn Fn(&Array2<f64>) -> Array2<f64> + Sync);

/// Eigenpairs, eigenvalues in decreasing order.
#[derive(Debug, Clone)]
pub struct EigenPairs {
    pub values: Array1<f64>,
    /// n × k, B-orthonormal columns.
    pub vectors: Array2<f64>,
}

/// Eigen-decomposition of a small symmetric matrix, eigenvalues decreasing.
pub fn symmetric_eigen(t: &Array2<f64>) -> (Array1<f64>, Array2<f64>) {
    try_symmetric_eigen(t).expect("symmetric eigensolver converges")
}

/// Eigen-decomposition of a small symmetric matrix, eigenvalues decreasing; `None` when the
/// matrix is not finite or the eigensolver does not converge.
pub fn try_symmetric_eigen(t: &Array2<f64>) -> Option<(Array1<f64>, Array2<f64>)> {
    if t.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let n = t.nrows();
    let m = faer::Mat::from_fn(n, n, |i, j| 0.5 * (t[[i, j]] + t[[j, i]]));
    let eig = m.as_ref().self_adjoint_eigen(Side::Lower).ok()?;
    let (s, u) = (eig.S().column_vector(), eig.U());
    // faer sorts increasing: reverse
    let values = Array1::from_shape_fn(n, |i| s[n - 1 - i]);
    let vectors = Array2::from_shape_fn((n, n), |(i, j)| u[(i, n - 1 - j)]);
    Some((values, vectors))
}

/// A B-orthonormal basis of the range of Y (columns of tiny weight dropped), given B Y.
/// Uses the eigen-decomposition of the Gram matrix Yᵀ B Y (twice, for accuracy).
fn b_orthonormalize(y: Array2<f64>, apply_b: BlockOp<'_>) -> Array2<f64> {
    let mut q = y;
    for _ in 0..2 {
        let bq = apply_b(&q);
        let gram = q.t().dot(&bq);
        let (d, w) = symmetric_eigen(&gram);
        let tol = d[0].abs() * 1e-13;
        let keep: Vec<usize> = (0..d.len()).filter(|&i| d[i] > tol).collect();
        let scale = Array2::from_shape_fn((w.nrows(), keep.len()), |(i, j)| {
            w[[i, keep[j]]] / d[keep[j]].sqrt()
        });
        q = q.dot(&scale);
    }
    q
}

/// The `rank` dominant eigenpairs of A v = λ B v with `oversampling` extra columns.
pub fn double_pass_generalized(
    n: usize,
    apply_a: BlockOp<'_>,
    apply_b: BlockOp<'_>,
    solve_b: BlockOp<'_>,
    rank: usize,
    oversampling: usize,
    rng: &mut impl Rng,
) -> EigenPairs {
    let l = (rank + oversampling).min(n);
    let omega = Array2::from_shape_fn((n, l), |_| rng.sample::<f64, _>(StandardNormal));
    let y = solve_b(&apply_a(&omega));
    let q = b_orthonormalize(y, apply_b);
    let t = q.t().dot(&apply_a(&q));
    let (values, w) = symmetric_eigen(&t);
    let k = rank.min(values.len());
    EigenPairs {
        values: values.slice(ndarray::s![..k]).to_owned(),
        vectors: q.dot(&w.slice(ndarray::s![.., ..k])),
    }
}

/// Applies a vector operator column by column, in parallel.
pub fn columnwise(x: &Array2<f64>, op: impl Fn(&[f64]) -> Vec<f64> + Sync) -> Array2<f64> {
    use rayon::prelude::*;
    let cols: Vec<Vec<f64>> = (0..x.ncols())
        .into_par_iter()
        .map(|j| op(&x.column(j).to_vec()))
        .collect();
    let mut out = Array2::zeros((cols.first().map_or(x.nrows(), Vec::len), x.ncols()));
    for (j, c) in cols.into_iter().enumerate() {
        out.index_axis_mut(Axis(1), j).assign(&Array1::from(c));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Purpose};
    use faer::linalg::solvers::DenseSolveCore;

    /// Exact generalized eigenpairs by reduction to a standard problem: B = L Lᵀ,
    /// L⁻¹ A L⁻ᵀ w = λ w, v = L⁻ᵀ w (dense, small).
    fn exact(a: &Array2<f64>, b: &Array2<f64>) -> Array1<f64> {
        let n = a.nrows();
        let bm = faer::Mat::from_fn(n, n, |i, j| b[[i, j]]);
        let llt = bm.as_ref().llt(Side::Lower).unwrap();
        let l = llt.L();
        let l = Array2::from_shape_fn((n, n), |(i, j)| l[(i, j)]);
        // L⁻¹ by forward substitution
        let mut linv = Array2::<f64>::eye(n);
        for c in 0..n {
            for i in 0..n {
                let s: f64 = (0..i).map(|k| l[[i, k]] * linv[[k, c]]).sum();
                linv[[i, c]] = (linv[[i, c]] - s) / l[[i, i]];
            }
        }
        symmetric_eigen(&linv.dot(a).dot(&linv.t())).0
    }

    #[test]
    fn reproduces_exact_generalized_eigenpairs_of_a_small_dense_problem() {
        let n = 40;
        let mut rng = stream(5, Purpose::Sketch, 0);
        let g = Array2::from_shape_fn((n, n), |_| rng.sample::<f64, _>(StandardNormal));
        let b = g.t().dot(&g) / n as f64 + Array2::<f64>::eye(n);
        // A of rank 8 with decaying spectrum
        let v = Array2::from_shape_fn((n, 8), |_| rng.sample::<f64, _>(StandardNormal));
        let s = Array2::from_diag(&Array1::from_shape_fn(8, |i| 10f64.powi(-(i as i32) / 2)));
        let a = v.dot(&s).dot(&v.t());
        let bi = {
            let bm = faer::Mat::from_fn(n, n, |i, j| b[[i, j]]);
            let inv = bm.as_ref().llt(Side::Lower).unwrap().inverse();
            Array2::from_shape_fn((n, n), |(i, j)| inv[(i, j)])
        };
        let (ap, bp, bip) = (
            |x: &Array2<f64>| a.dot(x),
            |x: &Array2<f64>| b.dot(x),
            |x: &Array2<f64>| bi.dot(x),
        );
        let pairs =
            double_pass_generalized(n, &ap, &bp, &bip, 8, 5, &mut stream(1, Purpose::Sketch, 1));
        let lambda = exact(&a, &b);
        for i in 0..8 {
            assert!(
                (pairs.values[i] - lambda[i]).abs() < 1e-9 * lambda[0],
                "λ_{i}: {} vs {}",
                pairs.values[i],
                lambda[i]
            );
        }
        // B-orthonormal, and A U = B U Λ
        let u = &pairs.vectors;
        let utbu = u.t().dot(&b.dot(u));
        assert!((&utbu - &Array2::<f64>::eye(8))
            .iter()
            .all(|x| x.abs() < 1e-10));
        let res = a.dot(u) - b.dot(u).dot(&Array2::from_diag(&pairs.values));
        assert!(
            res.iter().all(|x| x.abs() < 1e-9),
            "residual {}",
            res.iter().fold(0.0f64, |m, x| m.max(x.abs()))
        );
    }
}
