//! The Taylor test, shared by every derivative check in dino.
//!
//! For a map F with claimed derivative action DF(x)v, the first-order remainder
//! r(ε) = ‖F(x + εv) − F(x) − ε DF(x)v‖ is O(ε²) when the derivative is right and O(ε) when it is
//! wrong. Over a sequence of halvings of ε, the log–log slope of r(ε) must therefore be 2.

/// Remainders of a Taylor test over ε_k = ε_0 / 2^k.
#[derive(Debug, Clone)]
pub struct TaylorTest {
    pub eps: Vec<f64>,
    pub remainders: Vec<f64>,
}

impl TaylorTest {
    /// Runs the test: `f(ε)` evaluates F(x + εv), `f0` = F(x), `dfv` = DF(x)v;
    /// ε_k = `eps0` / 2^k for k = 0..=`halvings`.
    pub fn run(
        f: impl Fn(f64) -> Vec<f64>,
        f0: &[f64],
        dfv: &[f64],
        eps0: f64,
        halvings: usize,
    ) -> Self {
        let eps: Vec<f64> = (0..=halvings).map(|k| eps0 / 2f64.powi(k as i32)).collect();
        let remainders = eps
            .iter()
            .map(|&e| {
                let fe = f(e);
                fe.iter()
                    .zip(f0)
                    .zip(dfv)
                    .map(|((a, b), d)| (a - b - e * d).powi(2))
                    .sum::<f64>()
                    .sqrt()
            })
            .collect();
        TaylorTest { eps, remainders }
    }

    /// Runs the test for a scalar function with gradient g (DF(x)v = gᵀv).
    pub fn run_scalar(
        f: impl Fn(f64) -> f64,
        f0: f64,
        gradient_dot_v: f64,
        eps0: f64,
        halvings: usize,
    ) -> Self {
        Self::run(|e| vec![f(e)], &[f0], &[gradient_dot_v], eps0, halvings)
    }

    /// Least-squares slope of log r against log ε.
    pub fn slope(&self) -> f64 {
        let x: Vec<f64> = self.eps.iter().map(|e| e.ln()).collect();
        let y: Vec<f64> = self
            .remainders
            .iter()
            .map(|r| r.max(f64::MIN_POSITIVE).ln())
            .collect();
        let n = x.len() as f64;
        let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
        let sxy: f64 = x.iter().zip(&y).map(|(a, b)| (a - mx) * (b - my)).sum();
        let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
        sxy / sxx
    }

    /// Panics with the whole table unless the slope is within `tol` of 2.
    pub fn assert_second_order(&self, what: &str, tol: f64) {
        let s = self.slope();
        assert!(
            (s - 2.0).abs() <= tol,
            "Taylor test of {what}: slope {s:.3}, expected 2 ± {tol}\n{self}"
        );
    }
}

impl std::fmt::Display for TaylorTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{:>12} {:>14}", "eps", "remainder")?;
        for (e, r) in self.eps.iter().zip(&self.remainders) {
            writeln!(f, "{e:>12.4e} {r:>14.6e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_right_and_wrong_derivatives() {
        let f = |x: f64| vec![x.sin(), x * x];
        let x: f64 = 0.7;
        let right = [x.cos(), 2.0 * x];
        let wrong = [x.cos() * 1.1, 2.0 * x];
        let t = TaylorTest::run(|e| f(x + e), &f(x), &right, 0.1, 6);
        assert!((t.slope() - 2.0).abs() < 0.1, "{t}");
        let t = TaylorTest::run(|e| f(x + e), &f(x), &wrong, 0.1, 6);
        assert!(t.slope() < 1.5, "{t}");
    }
}
