//! What the chains say: diagnostics per QoI, the spread between chains, Monte-Carlo errors.

use super::outcome::{Diagnostics, QoiDiagnostics};
use crate::inference::diagnostics::{between_chain_standard_error, effective_sample_size, r_hat};
use crate::inference::mcmc::{moments, ChainState};

/// The R̂ below which the chains count as mixed.
pub const R_HAT_CONVERGED: f64 = 1.1;

/// Acceptance rates, ESS / IACT per QoI (ESS summed over the chains, IACT = steps / ESS), R̂,
/// ESS per second of `wall_s` and per PDE solve.
pub fn diagnostics(chains: &[ChainState], wall_s: f64, pde_solves: usize) -> Diagnostics {
    let k = chains[0].qoi.first().map_or(0, |q| q.len());
    let mut qoi = Vec::new();
    let mut ess_min = f64::INFINITY;
    let mut r_hat_max: Option<f64> = None;
    for i in 0..k {
        let traces: Vec<Vec<f64>> = chains
            .iter()
            .map(|c| c.qoi.iter().map(|q| q[i]).collect())
            .collect();
        let ess: f64 = traces.iter().map(|t| effective_sample_size(t)).sum();
        let n: usize = traces.iter().map(Vec::len).sum();
        let refs: Vec<&[f64]> = traces.iter().map(|t| &t[..]).collect();
        ess_min = ess_min.min(ess);
        let r = r_hat(&refs);
        if let Some(r) = r {
            r_hat_max = Some(r_hat_max.map_or(r, |m| m.max(r)));
        }
        qoi.push(QoiDiagnostics {
            qoi: if i == 0 {
                "misfit".into()
            } else {
                format!("laplace_coefficient_{i}")
            },
            ess,
            iact: n as f64 / ess.max(1e-300),
            r_hat: r,
        });
    }
    let proposals: usize = chains.iter().map(|c| c.proposals).sum();
    let stage1: usize = chains.iter().map(|c| c.stage1_accepted).sum();
    let accepted: usize = chains.iter().map(|c| c.accepted).sum();
    let subchain_steps: usize = chains.iter().map(|c| c.subchain_steps).sum();
    let subchain_accepted: usize = chains.iter().map(|c| c.subchain_accepted).sum();
    Diagnostics {
        subchain_acceptance_rate: (subchain_steps > 0)
            .then(|| subchain_accepted as f64 / subchain_steps as f64),
        proposals,
        acceptance_rate: accepted as f64 / proposals.max(1) as f64,
        stage1_acceptance_rate: stage1 as f64 / proposals.max(1) as f64,
        stage2_acceptance_rate: accepted as f64 / stage1.max(1) as f64,
        qoi,
        r_hat_max,
        converged: r_hat_max.map(|r| r < R_HAT_CONVERGED),
        ess_min,
        ess_per_second: ess_min / wall_s.max(1e-12),
        pde_solves,
        ess_per_pde_solve: (pde_solves > 0).then(|| ess_min / pde_solves as f64),
    }
}

/// Per-vertex standard errors of the pooled mean and pointwise-variance fields, from the spread of
/// the chains' own moments.
pub fn moment_errors(chains: &[ChainState]) -> Option<(Vec<f64>, Vec<f64>)> {
    let (means, variances): (Vec<Vec<f64>>, Vec<Vec<f64>>) = chains
        .iter()
        .map(|c| moments(std::slice::from_ref(c)))
        .unzip();
    Some((
        between_chain_standard_error(&means)?,
        between_chain_standard_error(&variances)?,
    ))
}

/// max over chain pairs of (‖mean_a − mean_b‖/‖mean_b‖, ‖var_a − var_b‖/‖var_b‖); `None` for a
/// single chain.
pub fn chain_spread(chains: &[ChainState]) -> Option<(f64, f64)> {
    let each: Vec<(Vec<f64>, Vec<f64>)> = chains
        .iter()
        .map(|c| moments(std::slice::from_ref(c)))
        .collect();
    let mut spread: Option<(f64, f64)> = None;
    for (i, a) in each.iter().enumerate() {
        for b in &each[i + 1..] {
            let (m, v) = (
                relative_difference(&a.0, &b.0),
                relative_difference(&a.1, &b.1),
            );
            spread = Some(spread.map_or((m, v), |(sm, sv)| (sm.max(m), sv.max(v))));
        }
    }
    spread
}

/// The relative difference ‖a − b‖/‖b‖ that Monte-Carlo error alone produces between two
/// independent, unbiased estimates with per-component standard errors `se_a`, `se_b`:
/// √(Σ_i se_a,i² + se_b,i²) / ‖b‖. An observed difference well above it is a bias.
pub fn monte_carlo_floor(se_a: &[f64], se_b: &[f64], b: &[f64]) -> f64 {
    let var: f64 = se_a.iter().zip(se_b).map(|(x, y)| x * x + y * y).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (var / den).sqrt()
}

/// ‖a − b‖ / ‖b‖ (Euclidean).
pub fn relative_difference(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den).sqrt()
}

/// Each chain's trace of the leading Laplace coefficient v₁ᵀR(m − m_MAP) (Φ where the QoIs
/// hold no coefficient).
pub fn leading_traces(chains: &[ChainState]) -> Vec<Vec<f64>> {
    chains
        .iter()
        .map(|c| {
            c.qoi
                .iter()
                .map(|q| q.get(1).copied().unwrap_or(q[0]))
                .collect()
        })
        .collect()
}
