//! Projected L-BFGS for min f(x) subject to l ≤ x ≤ u (L-BFGS-B semantics: box bounds, limited
//! memory, a projected-gradient stopping test), written once here because `argmin` has no
//! bound-constrained quasi-Newton method.
//!
//! Each iteration: the variables at a bound whose gradient points outward are fixed (active set);
//! the two-loop recursion gives the quasi-Newton direction d on the free variables (steepest
//! descent if that is not a descent direction); a backtracking Armijo search along the projected
//! path x(α) = P(x + α d) accepts f(x(α)) ≤ f(x) + c ∇f(x)ᵀ(x(α) − x). An evaluation that fails
//! counts as insufficient decrease (the step is halved) and is recorded.
//! Stops when ‖P(x − ∇f) − x‖_∞ ≤ gtol, when the relative decrease
//! (f_k − f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) ≤ ftol (scipy's factr test), or after max_iterations.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Stopping and line-search parameters (defaults as scipy's L-BFGS-B in the reference drivers).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct BoundedLbfgsSettings {
    pub max_iterations: usize,
    /// Number of (s, y) pairs kept.
    pub memory: usize,
    /// Tolerance on the projected gradient's ∞-norm.
    pub gtol: f64,
    /// Tolerance on the relative decrease of f.
    pub ftol: f64,
    pub armijo: f64,
    pub max_backtracks: usize,
}

impl Default for BoundedLbfgsSettings {
    fn default() -> Self {
        BoundedLbfgsSettings {
            max_iterations: 100,
            memory: 10,
            gtol: 1e-5,
            ftol: 1e-7,
            armijo: 1e-4,
            max_backtracks: 30,
        }
    }
}

/// Why the optimizer stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoundedStop {
    ProjectedGradient,
    RelativeDecrease,
    MaxIterations,
    LineSearchFailed,
}

/// One iteration's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BoundedIteration {
    pub iteration: usize,
    pub value: f64,
    pub projected_gradient: f64,
    pub step: f64,
    pub active: usize,
    pub evaluations: usize,
}

/// The result, with the failures met on the way.
#[derive(Debug, Clone)]
pub struct BoundedResult<F> {
    pub x: Vec<f64>,
    pub value: f64,
    pub gradient: Vec<f64>,
    pub iterations: usize,
    pub evaluations: usize,
    pub stop: BoundedStop,
    pub history: Vec<BoundedIteration>,
    /// Evaluations that failed (treated as insufficient decrease).
    pub failures: Vec<F>,
}

fn project(x: &mut [f64], lower: &[f64], upper: &[f64]) {
    for ((v, l), u) in x.iter_mut().zip(lower).zip(upper) {
        *v = v.clamp(*l, *u);
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// ‖P(x − g) − x‖_∞
fn projected_gradient_norm(x: &[f64], g: &[f64], lower: &[f64], upper: &[f64]) -> f64 {
    x.iter()
        .zip(g)
        .zip(lower.iter().zip(upper))
        .map(|((x, g), (l, u))| ((x - g).clamp(*l, *u) - x).abs())
        .fold(0.0, f64::max)
}

/// Minimizes f over the box [lower, upper] from x0 (projected into the box first). `f` returns
/// f(x) and ∇f(x), or a failure; a failure at x0 is returned as the error.
pub fn minimize_bounded<F>(
    x0: &[f64],
    lower: &[f64],
    upper: &[f64],
    settings: &BoundedLbfgsSettings,
    mut f: impl FnMut(&[f64]) -> Result<(f64, Vec<f64>), F>,
    mut on_iteration: impl FnMut(&BoundedIteration),
) -> Result<BoundedResult<F>, F> {
    let n = x0.len();
    assert!(
        lower.len() == n && upper.len() == n,
        "bounds of the wrong length"
    );
    let mut x = x0.to_vec();
    project(&mut x, lower, upper);
    let (mut fx, mut g) = f(&x)?;
    let mut evaluations = 1;
    let mut memory: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::new();
    let mut history = Vec::new();
    let mut failures = Vec::new();
    let mut stop = BoundedStop::MaxIterations;
    let mut iterations = 0;
    let record = |it: usize, fx: f64, g: &[f64], x: &[f64], step: f64, ev: usize| {
        let active = (0..n)
            .filter(|&i| (x[i] <= lower[i] && g[i] > 0.0) || (x[i] >= upper[i] && g[i] < 0.0))
            .count();
        BoundedIteration {
            iteration: it,
            value: fx,
            projected_gradient: projected_gradient_norm(x, g, lower, upper),
            step,
            active,
            evaluations: ev,
        }
    };
    let first = record(0, fx, &g, &x, 0.0, evaluations);
    on_iteration(&first);
    history.push(first);
    while iterations < settings.max_iterations {
        if projected_gradient_norm(&x, &g, lower, upper) <= settings.gtol {
            stop = BoundedStop::ProjectedGradient;
            break;
        }
        let free: Vec<bool> = (0..n)
            .map(|i| !((x[i] <= lower[i] && g[i] > 0.0) || (x[i] >= upper[i] && g[i] < 0.0)))
            .collect();
        let masked = |v: &[f64]| -> Vec<f64> {
            v.iter()
                .zip(&free)
                .map(|(x, &f)| if f { *x } else { 0.0 })
                .collect()
        };
        // two-loop recursion on the free variables
        let mut q = masked(&g);
        let mut alphas = Vec::with_capacity(memory.len());
        for (s, y, rho) in memory.iter().rev() {
            let a = rho * dot(&masked(s), &q);
            q.iter_mut().zip(&masked(y)).for_each(|(q, y)| *q -= a * y);
            alphas.push(a);
        }
        if let Some((s, y, _)) = memory.back() {
            let (s, y) = (masked(s), masked(y));
            let yy = dot(&y, &y);
            if yy > 0.0 {
                let gamma = dot(&s, &y) / yy;
                if gamma > 0.0 {
                    q.iter_mut().for_each(|v| *v *= gamma);
                }
            }
        }
        for ((s, y, rho), a) in memory.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(&masked(y), &q);
            q.iter_mut()
                .zip(&masked(s))
                .for_each(|(q, s)| *q += (a - b) * s);
        }
        let mut d: Vec<f64> = masked(&q).iter().map(|v| -v).collect();
        let gd = dot(&g, &d);
        let steepest = gd >= -1e-14 * dot(&d, &d).sqrt() * dot(&g, &g).sqrt() || memory.is_empty();
        if steepest {
            if !memory.is_empty() {
                memory.clear();
            }
            d = masked(&g).iter().map(|v| -v).collect();
        }
        let mut alpha = if memory.is_empty() {
            let dmax = d.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            if dmax > 0.0 {
                (1.0 / dmax).min(1.0)
            } else {
                1.0
            }
        } else {
            1.0
        };
        let mut accepted = None;
        for _ in 0..=settings.max_backtracks {
            let mut trial: Vec<f64> = x.iter().zip(&d).map(|(x, d)| x + alpha * d).collect();
            project(&mut trial, lower, upper);
            let step: Vec<f64> = trial.iter().zip(&x).map(|(a, b)| a - b).collect();
            evaluations += 1;
            match f(&trial) {
                Ok((ft, gt)) if ft <= fx + settings.armijo * dot(&g, &step) => {
                    accepted = Some((trial, ft, gt, step));
                    break;
                }
                Ok(_) => {}
                Err(failure) => failures.push(failure),
            }
            alpha *= 0.5;
        }
        let Some((x_new, f_new, g_new, s)) = accepted else {
            stop = BoundedStop::LineSearchFailed;
            break;
        };
        iterations += 1;
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&y, &y).max(f64::MIN_POSITIVE) {
            memory.push_back((s, y, 1.0 / sy));
            if memory.len() > settings.memory {
                memory.pop_front();
            }
        }
        let decrease = (fx - f_new) / fx.abs().max(f_new.abs()).max(1.0);
        x = x_new;
        fx = f_new;
        g = g_new;
        let rec = record(iterations, fx, &g, &x, alpha, evaluations);
        on_iteration(&rec);
        history.push(rec);
        if decrease <= settings.ftol {
            stop = BoundedStop::RelativeDecrease;
            break;
        }
    }
    Ok(BoundedResult {
        x,
        value: fx,
        gradient: g,
        iterations,
        evaluations,
        stop,
        history,
        failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rosenbrock(x: &[f64]) -> Result<(f64, Vec<f64>), ()> {
        let (a, b) = (x[0], x[1]);
        Ok((
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2),
            vec![
                -2.0 * (1.0 - a) - 400.0 * a * (b - a * a),
                200.0 * (b - a * a),
            ],
        ))
    }

    #[test]
    fn finds_the_bound_constrained_rosenbrock_minimum() {
        // with x ≤ 0.5 the minimum is at (0.5, 0.25), f = 0.25
        let settings = BoundedLbfgsSettings {
            max_iterations: 500,
            gtol: 1e-9,
            ftol: 0.0,
            ..Default::default()
        };
        let r = minimize_bounded(
            &[-1.2, 1.0],
            &[-2.0, -2.0],
            &[0.5, 2.0],
            &settings,
            rosenbrock,
            |_| {},
        )
        .unwrap();
        assert!(
            (r.x[0] - 0.5).abs() < 1e-8 && (r.x[1] - 0.25).abs() < 1e-6,
            "{:?}",
            r.x
        );
        assert!((r.value - 0.25).abs() < 1e-9);
        // unconstrained (wide box): (1, 1)
        let r = minimize_bounded(
            &[-1.2, 1.0],
            &[-5.0; 2],
            &[5.0; 2],
            &settings,
            rosenbrock,
            |_| {},
        )
        .unwrap();
        assert!(
            (r.x[0] - 1.0).abs() < 1e-6 && (r.x[1] - 1.0).abs() < 1e-6,
            "{:?}",
            r.x
        );
    }

    #[test]
    fn failed_evaluations_shorten_the_step_and_are_recorded() {
        // f = ‖x − 3‖² but evaluations with x₀ > 2.5 fail; box [0, 10]: the optimizer must stay
        // below 2.5 and report the failures
        let f = |x: &[f64]| -> Result<(f64, Vec<f64>), String> {
            if x[0] > 2.5 {
                return Err(format!("x = {}", x[0]));
            }
            Ok(((x[0] - 3.0).powi(2), vec![2.0 * (x[0] - 3.0)]))
        };
        let settings = BoundedLbfgsSettings {
            max_iterations: 50,
            ..Default::default()
        };
        let r = minimize_bounded(&[0.0], &[0.0], &[10.0], &settings, f, |_| {}).unwrap();
        assert!(!r.failures.is_empty());
        assert!(r.x[0] <= 2.5 && r.x[0] > 2.0, "{:?}", r.x);
    }
}
