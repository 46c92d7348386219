//! MCMC diagnostics: autocorrelation, integrated autocorrelation time by Geyer's initial positive
//! sequence estimator, effective sample size, and the potential scale reduction R̂.

/// A trace centred on its mean, with its (biased) variance: ρ_k = Σ_t c_t c_{t+k} / (n var).
struct Centred {
    c: Vec<f64>,
    var: f64,
}

impl Centred {
    /// `None` for fewer than 2 values or a constant trace.
    fn new(x: &[f64]) -> Option<Self> {
        let n = x.len();
        if n < 2 {
            return None;
        }
        let mean = x.iter().sum::<f64>() / n as f64;
        let c: Vec<f64> = x.iter().map(|v| v - mean).collect();
        let var = c.iter().map(|v| v * v).sum::<f64>() / n as f64;
        (var > 0.0).then_some(Centred { c, var })
    }

    /// ρ_k, O(n).
    fn rho(&self, k: usize) -> f64 {
        let n = self.c.len();
        self.c[..n - k]
            .iter()
            .zip(&self.c[k..])
            .map(|(a, b)| a * b)
            .sum::<f64>()
            / (n as f64 * self.var)
    }
}

/// Normalized autocorrelation ρ_0..ρ_{max_lag} of a trace.
pub fn autocorrelation(x: &[f64], max_lag: usize) -> Vec<f64> {
    match Centred::new(x) {
        None => vec![1.0],
        Some(c) => (0..=max_lag.min(x.len() - 1)).map(|k| c.rho(k)).collect(),
    }
}

/// τ = −1 + 2 Σ_i P_i with pair sums P_i = ρ_{2i} + ρ_{2i+1}, truncated at the first P_i ≤ 0
/// (Geyer 1992, initial positive sequence). τ ≥ 1 is returned for constant or short traces.
/// The lags are computed only up to the truncation: O(n τ), not O(n²).
pub fn integrated_autocorrelation_time(x: &[f64]) -> f64 {
    let n = x.len();
    let centred = match Centred::new(x) {
        Some(c) if n >= 4 => c,
        _ => return 1.0,
    };
    let mut tau = -1.0;
    let mut i = 0;
    while 2 * i + 1 < n {
        let p = centred.rho(2 * i) + centred.rho(2 * i + 1);
        if p <= 0.0 {
            break;
        }
        tau += 2.0 * p;
        i += 1;
    }
    tau.max(1.0)
}

/// n / τ
pub fn effective_sample_size(x: &[f64]) -> f64 {
    x.len() as f64 / integrated_autocorrelation_time(x)
}

/// Monte-Carlo standard error, per component, of the pooled estimate (1/K) Σ_k x_k built from K
/// independent chains of equal length whose own estimates are `per_chain[k]` (e.g. each chain's
/// posterior mean field): se_i² = s_i² / K with s_i² = Σ_k (x_{k,i} − x̄_i)² / (K − 1), the
/// between-chain ("batch means") variance. Unlike an ESS it needs no autocorrelation model, and it
/// sees every slow direction the chains disagree along. None for fewer than 2 chains.
pub fn between_chain_standard_error(per_chain: &[Vec<f64>]) -> Option<Vec<f64>> {
    let k = per_chain.len();
    if k < 2 {
        return None;
    }
    let d = per_chain[0].len();
    let kf = k as f64;
    Some(
        (0..d)
            .map(|i| {
                let mean = per_chain.iter().map(|x| x[i]).sum::<f64>() / kf;
                let s2 = per_chain.iter().map(|x| (x[i] - mean).powi(2)).sum::<f64>() / (kf - 1.0);
                (s2 / kf).sqrt()
            })
            .collect(),
    )
}

/// Gelman–Rubin R̂ over chains of equal length (None for fewer than 2 chains or < 4 samples).
pub fn r_hat(chains: &[&[f64]]) -> Option<f64> {
    let m = chains.len();
    let n = chains.iter().map(|c| c.len()).min()?;
    if m < 2 || n < 4 {
        return None;
    }
    let means: Vec<f64> = chains
        .iter()
        .map(|c| c[..n].iter().sum::<f64>() / n as f64)
        .collect();
    let grand = means.iter().sum::<f64>() / m as f64;
    let b = n as f64 / (m - 1) as f64 * means.iter().map(|x| (x - grand).powi(2)).sum::<f64>();
    let w = chains
        .iter()
        .zip(&means)
        .map(|(c, mu)| c[..n].iter().map(|x| (x - mu).powi(2)).sum::<f64>() / (n - 1) as f64)
        .sum::<f64>()
        / m as f64;
    if w <= 0.0 {
        return None;
    }
    let var = (n - 1) as f64 / n as f64 * w + b / n as f64;
    Some((var / w).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Purpose};
    use rand::Rng;
    use rand_distr::StandardNormal;

    /// Chain estimates 1 and 3 (one component) and 5, 5 (another): s² = 2 and 0, se = √(2/2) = 1
    /// and 0; and for K iid N(0, 1) chain estimates the pooled se² = 1/K on average.
    #[test]
    fn between_chain_standard_error_is_the_spread_of_chain_estimates_over_root_k() {
        assert_eq!(
            between_chain_standard_error(&[vec![1.0, 5.0], vec![3.0, 5.0]]),
            Some(vec![1.0, 0.0])
        );
        assert_eq!(between_chain_standard_error(&[vec![1.0]]), None);
        let mut rng = stream(7, Purpose::Chain, 0);
        let k = 4;
        let per_chain: Vec<Vec<f64>> = (0..k)
            .map(|_| {
                (0..20_000)
                    .map(|_| rng.sample::<f64, _>(StandardNormal))
                    .collect()
            })
            .collect();
        let se = between_chain_standard_error(&per_chain).unwrap();
        let mean_se2 = se.iter().map(|s| s * s).sum::<f64>() / se.len() as f64;
        assert!(
            (mean_se2 * k as f64 - 1.0).abs() < 0.03,
            "K se² = {}",
            mean_se2 * k as f64
        );
    }

    /// An AR(1) process x_{t+1} = a x_t + √(1−a²) ε has τ = (1 + a)/(1 − a).
    #[test]
    fn iact_of_an_ar1_process_matches_theory() {
        let mut rng = stream(3, Purpose::Chain, 0);
        for a in [0.0, 0.5, 0.9] {
            let mut x = vec![0.0; 200_000];
            for t in 1..x.len() {
                x[t] =
                    a * x[t - 1] + (1.0f64 - a * a).sqrt() * rng.sample::<f64, _>(StandardNormal);
            }
            let tau = integrated_autocorrelation_time(&x);
            let exact = (1.0 + a) / (1.0 - a);
            assert!(
                (tau - exact).abs() < 0.1 * exact,
                "a = {a}: τ = {tau} vs {exact}"
            );
        }
        let same: Vec<Vec<f64>> = (0..4)
            .map(|c| {
                let mut r = stream(5, Purpose::Chain, c);
                (0..2000)
                    .map(|_| r.sample::<f64, _>(StandardNormal))
                    .collect()
            })
            .collect();
        let refs: Vec<&[f64]> = same.iter().map(|c| &c[..]).collect();
        assert!((r_hat(&refs).unwrap() - 1.0).abs() < 0.01);
        let shifted: Vec<Vec<f64>> = same
            .iter()
            .enumerate()
            .map(|(c, v)| v.iter().map(|x| x + c as f64).collect())
            .collect();
        let refs: Vec<&[f64]> = shifted.iter().map(|c| &c[..]).collect();
        assert!(
            r_hat(&refs).unwrap() > 1.5,
            "chains around different means are flagged"
        );
    }
}
