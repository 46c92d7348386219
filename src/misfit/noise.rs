//! Gaussian noise models: the covariance Γ of the observation noise η in d = q(m) + η,
//! η ~ N(0, Γ). Three forms: isotropic Γ = σ² I (one σ for every datum), diagonal
//! Γ = diag(σ₁², …, σ_n²) (a σ per datum), and a full symmetric positive-definite Γ, factored
//! once as Γ = L Lᵀ (Cholesky, faer).
//!
//! The misfit ½‖q − d‖²_{Γ⁻¹} needs Γ⁻¹ r; whitening (L⁻¹ r, so that ‖L⁻¹ r‖² = rᵀ Γ⁻¹ r) and
//! colouring (L ξ ~ N(0, Γ) for ξ ~ N(0, I)) serve noise draws and diagnostics.

use faer::linalg::triangular_solve::{
    solve_lower_triangular_in_place, solve_upper_triangular_in_place,
};
use faer::{Par, Side};
use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result};

/// The noise covariance Γ.
#[derive(Debug, Clone, PartialEq)]
pub enum NoiseCovariance {
    /// Γ = σ² I.
    Isotropic { variance: f64 },
    /// Γ = diag(σᵢ²).
    Diagonal { variances: Vec<f64> },
    /// A full SPD Γ, kept as its lower Cholesky factor L (Γ = L Lᵀ).
    Dense { cholesky: faer::Mat<f64> },
}

fn positive_finite(v: f64) -> bool {
    v > 0.0 && v.is_finite()
}

impl NoiseCovariance {
    /// Γ = σ² I with σ² > 0.
    pub fn isotropic(variance: f64) -> Result<Self> {
        if !positive_finite(variance) {
            return Err(Error::invalid(
                "misfit",
                "noise_variance",
                "a positive finite number",
                variance,
            ));
        }
        Ok(NoiseCovariance::Isotropic { variance })
    }

    /// Γ = diag(σᵢ²), every σᵢ² > 0; the error names the first bad datum.
    pub fn diagonal(variances: Vec<f64>) -> Result<Self> {
        if let Some((i, v)) = variances
            .iter()
            .enumerate()
            .find(|(_, v)| !positive_finite(**v))
        {
            return Err(Error::invalid(
                "misfit",
                format!("noise variance of datum {i}"),
                "a positive finite number",
                v,
            ));
        }
        Ok(NoiseCovariance::Diagonal { variances })
    }

    /// A full covariance: square, symmetric (to 1e-12 relative) and positive definite.
    pub fn dense(covariance: Array2<f64>) -> Result<Self> {
        let n = covariance.nrows();
        if covariance.ncols() != n || n == 0 {
            return Err(Error::invalid(
                "misfit",
                "noise covariance",
                "a non-empty square matrix",
                format!("{} × {}", n, covariance.ncols()),
            ));
        }
        if let Some(((i, j), v)) = covariance.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(Error::invalid(
                "misfit",
                format!("noise covariance [{i}, {j}]"),
                "a finite number",
                v,
            ));
        }
        let scale = covariance.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let asymmetry = covariance
            .indexed_iter()
            .map(|((i, j), v)| (v - covariance[[j, i]]).abs())
            .fold(0.0, f64::max);
        if asymmetry > 1e-12 * scale {
            return Err(Error::invalid(
                "misfit",
                "noise covariance",
                "a finite symmetric matrix",
                format!("max |Γ − Γᵀ| = {asymmetry:.2e}"),
            ));
        }
        let m = faer::Mat::from_fn(n, n, |i, j| covariance[[i, j]]);
        let llt = m.as_ref().llt(Side::Lower).map_err(|_| {
            Error::invalid(
                "misfit",
                "noise covariance",
                "a positive-definite matrix (its Cholesky factorization failed)",
                "a matrix that is not positive definite",
            )
        })?;
        let l = llt.L();
        let cholesky = faer::Mat::from_fn(n, n, |i, j| if j <= i { l[(i, j)] } else { 0.0 });
        Ok(NoiseCovariance::Dense { cholesky })
    }

    /// The number of data Γ is defined for (`None`: isotropic, any number).
    pub fn dim(&self) -> Option<usize> {
        match self {
            NoiseCovariance::Isotropic { .. } => None,
            NoiseCovariance::Diagonal { variances } => Some(variances.len()),
            NoiseCovariance::Dense { cholesky } => Some(cholesky.nrows()),
        }
    }

    /// σ² of an isotropic Γ.
    pub fn isotropic_variance(&self) -> Option<f64> {
        match self {
            NoiseCovariance::Isotropic { variance } => Some(*variance),
            _ => None,
        }
    }

    /// Γ⁻¹ r (for Γ = σ² I: rᵢ / σ², divided, not multiplied by 1/σ²).
    pub fn precision_mul(&self, r: &[f64]) -> Vec<f64> {
        match self {
            NoiseCovariance::Isotropic { variance } => r.iter().map(|x| x / variance).collect(),
            NoiseCovariance::Diagonal { variances } => {
                r.iter().zip(variances).map(|(x, v)| x / v).collect()
            }
            NoiseCovariance::Dense { cholesky } => {
                let mut x = column(r);
                solve_lower_triangular_in_place(cholesky.as_ref(), x.as_mut(), Par::Seq);
                solve_upper_triangular_in_place(cholesky.transpose(), x.as_mut(), Par::Seq);
                x.col(0).iter().copied().collect()
            }
        }
    }

    /// Γ⁻¹ A, column by column (A has one row per datum).
    pub fn precision_mul_columns(&self, a: ArrayView2<f64>) -> Array2<f64> {
        match self {
            NoiseCovariance::Isotropic { variance } => a.to_owned() / *variance,
            _ => {
                let mut out = Array2::zeros(a.raw_dim());
                for (j, col) in a.columns().into_iter().enumerate() {
                    let y = self.precision_mul(&col.to_vec());
                    out.column_mut(j).assign(&ndarray::Array1::from(y));
                }
                out
            }
        }
    }

    /// The whitened residual L⁻¹ r, with ‖L⁻¹ r‖² = rᵀ Γ⁻¹ r.
    pub fn whiten(&self, r: &[f64]) -> Vec<f64> {
        match self {
            NoiseCovariance::Isotropic { variance } => {
                let s = variance.sqrt();
                r.iter().map(|x| x / s).collect()
            }
            NoiseCovariance::Diagonal { variances } => {
                r.iter().zip(variances).map(|(x, v)| x / v.sqrt()).collect()
            }
            NoiseCovariance::Dense { cholesky } => {
                let mut x = column(r);
                solve_lower_triangular_in_place(cholesky.as_ref(), x.as_mut(), Par::Seq);
                x.col(0).iter().copied().collect()
            }
        }
    }

    /// L ξ: a draw from N(0, Γ) for ξ ~ N(0, I).
    pub fn color(&self, xi: &[f64]) -> Vec<f64> {
        match self {
            NoiseCovariance::Isotropic { variance } => {
                let s = variance.sqrt();
                xi.iter().map(|x| s * x).collect()
            }
            NoiseCovariance::Diagonal { variances } => xi
                .iter()
                .zip(variances)
                .map(|(x, v)| v.sqrt() * x)
                .collect(),
            NoiseCovariance::Dense { cholesky } => {
                (cholesky * column(xi)).col(0).iter().copied().collect()
            }
        }
    }

    /// log det Γ for `n` data (n is needed for the isotropic form).
    pub fn log_det(&self, n: usize) -> f64 {
        match self {
            NoiseCovariance::Isotropic { variance } => n as f64 * variance.ln(),
            NoiseCovariance::Diagonal { variances } => variances.iter().map(|v| v.ln()).sum(),
            NoiseCovariance::Dense { cholesky } => {
                2.0 * (0..cholesky.nrows())
                    .map(|i| cholesky[(i, i)].ln())
                    .sum::<f64>()
            }
        }
    }
}

/// `v` as an n × 1 faer matrix.
fn column(v: &[f64]) -> faer::Mat<f64> {
    faer::Mat::from_fn(v.len(), 1, |i, _| v[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spd(n: usize) -> Array2<f64> {
        // a correlated covariance: exp(−|i − j| / 2) + 0.1 I
        Array2::from_shape_fn((n, n), |(i, j)| {
            (-(i as f64 - j as f64).abs() / 2.0).exp() + if i == j { 0.1 } else { 0.0 }
        })
    }

    #[test]
    fn dense_precision_inverts_the_covariance_and_whitening_gives_the_identity() {
        let g = spd(7);
        let noise = NoiseCovariance::dense(g.clone()).unwrap();
        let r: Vec<f64> = (0..7).map(|i| (i as f64 * 0.7).sin()).collect();
        let back = g.dot(&ndarray::Array1::from(noise.precision_mul(&r)));
        for (a, b) in back.iter().zip(&r) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        // L⁻¹ Γ L⁻ᵀ = I, column by column: whiten(Γ L⁻ᵀ e_j) = e_j ⇔ whiten(L e_j) = e_j
        for j in 0..7 {
            let e: Vec<f64> = (0..7).map(|i| if i == j { 1.0 } else { 0.0 }).collect();
            let w = noise.whiten(&noise.color(&e));
            for (i, v) in w.iter().enumerate() {
                assert!((v - e[i]).abs() < 1e-12);
            }
        }
        // ‖L⁻¹ r‖² = rᵀ Γ⁻¹ r
        let w2: f64 = noise.whiten(&r).iter().map(|v| v * v).sum();
        let q: f64 = r
            .iter()
            .zip(noise.precision_mul(&r))
            .map(|(a, b)| a * b)
            .sum();
        assert!((w2 - q).abs() < 1e-12 * q);
    }

    #[test]
    fn forms_agree_where_they_describe_the_same_covariance() {
        let r = [0.3, -1.2, 2.5];
        let iso = NoiseCovariance::isotropic(0.04).unwrap();
        let diag = NoiseCovariance::diagonal(vec![0.04; 3]).unwrap();
        let dense = NoiseCovariance::dense(Array2::eye(3) * 0.04).unwrap();
        for other in [&diag, &dense] {
            for (a, b) in iso.precision_mul(&r).iter().zip(other.precision_mul(&r)) {
                assert!((a - b).abs() < 1e-12 * a.abs());
            }
            assert!((iso.log_det(3) - other.log_det(3)).abs() < 1e-12);
        }
    }

    #[test]
    fn bad_covariances_are_errors_not_panics() {
        assert!(NoiseCovariance::isotropic(0.0).is_err());
        assert!(NoiseCovariance::diagonal(vec![1.0, -1.0]).is_err());
        assert!(NoiseCovariance::dense(Array2::zeros((2, 3))).is_err());
        let not_spd = ndarray::arr2(&[[1.0, 2.0], [2.0, 1.0]]);
        let err = NoiseCovariance::dense(not_spd).unwrap_err().to_string();
        assert!(err.contains("positive-definite"), "{err}");
        let with_nan = ndarray::arr2(&[[1.0, f64::NAN], [f64::NAN, 1.0]]);
        let err = NoiseCovariance::dense(with_nan).unwrap_err().to_string();
        assert!(err.contains("[0, 1]"), "{err}");
        let asymmetric = ndarray::arr2(&[[1.0, 0.5], [0.0, 1.0]]);
        assert!(NoiseCovariance::dense(asymmetric).is_err());
    }
}
