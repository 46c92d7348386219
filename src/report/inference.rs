//! The files of an inference outcome: `report.json`, the plots (MAP, truth, Newton history,
//! eigenvalues, Laplace and MCMC variance, traces, autocorrelation, the sensors' normalized
//! residuals), `fields.vtu`, the fields as `.npy` (`map.npy`, `true.npy`,
//! `laplace_variance.npy`, `posterior_mean.npy`, `posterior_variance.npy`), `residuals.csv`,
//! the Laplace approximation and the saved posterior samples; and `compare.md` of a comparison.

use std::path::Path;

use crate::error::Result;
use crate::inference::diagnostics::autocorrelation;
use crate::io::npy::{write_matrix, write_vector};
use crate::io::vtu::{write_vtu, PointField};
use crate::problem::observed::write_residuals_csv;
use crate::problem::Problem;
use crate::report::field::{mesh_map, sensor_map};
use crate::report::svg::{lines, semilogy, Series};
use crate::report::write_text;
use crate::workflow::compare::{ess_per_second, CompareOutcome};
use crate::workflow::infer::{InferOutcome, R_HAT_CONVERGED};

/// Writes every file of `outcome` into `out` (which must exist).
pub fn write_outcome(problem: &Problem, outcome: &InferOutcome, out: &Path) -> Result<()> {
    let (mesh, label) = (problem.mesh_ref(), &outcome.report.forward_map);
    let newton_g: Vec<f64> = outcome
        .report
        .map
        .history
        .iter()
        .map(|r| r.gradient_norm)
        .collect();
    let newton = [Series {
        name: "gradient norm",
        values: &newton_g,
    }];
    let title = "Newton–CG: ‖g‖_C per iteration";
    write_text(
        &out.join("newton.svg"),
        &semilogy(title, "iteration", "‖g‖_C", &newton),
    )?;
    let map_title = format!("MAP point ({label})");
    write_text(
        &out.join("map.svg"),
        &mesh_map(&map_title, mesh, &outcome.m_map),
    )?;
    write_vector(out.join("map.npy"), &outcome.m_map)?;
    if let Some(m_true) = &outcome.m_true {
        write_text(
            &out.join("true.svg"),
            &mesh_map("true parameter", mesh, m_true),
        )?;
        write_vector(out.join("true.npy"), m_true)?;
    }
    let fit = &outcome.report.map_fit;
    let points = problem.observation_points();
    let title = format!(
        "normalized residuals at the MAP point, χ²/datum = {:.3}",
        fit.chi2_per_datum
    );
    if points.len() == fit.normalized.len() {
        write_text(
            &out.join("sensors.svg"),
            &sensor_map(&title, mesh, &points, &fit.normalized),
        )?;
    }
    write_residuals_csv(
        &out.join("residuals.csv"),
        &points,
        &outcome.report.data,
        &fit.residual,
        &fit.normalized,
    )?;
    if let (Some(lap), Some(record)) = (&outcome.laplace, &outcome.report.laplace) {
        let ev = [Series {
            name: "λ_i",
            values: &record.eigenvalues,
        }];
        let title = "Prior-preconditioned GN Hessian eigenvalues";
        write_text(
            &out.join("eigenvalues.svg"),
            &semilogy(title, "index", "λ", &ev),
        )?;
        let title = format!("Laplace pointwise variance ({label})");
        write_text(
            &out.join("laplace_variance.svg"),
            &mesh_map(&title, mesh, &outcome.laplace_variance),
        )?;
        write_vector(out.join("laplace_variance.npy"), &outcome.laplace_variance)?;
        lap.save(&out.join("laplace"), &problem.hash())?;
    }
    if let Some(samples) = &outcome.posterior_samples {
        write_matrix(out.join("posterior_samples.npy"), samples)?;
    }
    if let (Some(mean), Some(variance)) = (&outcome.mean, &outcome.variance) {
        write_chain_plots(&outcome.traces, out)?;
        let title = format!("posterior mean, MCMC ({label})");
        write_text(
            &out.join("posterior_mean.svg"),
            &mesh_map(&title, mesh, mean),
        )?;
        write_vector(out.join("posterior_mean.npy"), mean)?;
        write_vector(out.join("posterior_variance.npy"), variance)?;
        let title = format!("posterior pointwise variance, MCMC ({label})");
        write_text(
            &out.join("posterior_variance.svg"),
            &mesh_map(&title, mesh, variance),
        )?;
    }
    write_fields(problem, outcome, out)?;
    write_text(
        &out.join("report.json"),
        &serde_json::to_string_pretty(&outcome.report).expect("serializable"),
    )
}

/// `fields.vtu`: the true parameter, the MAP point, the Laplace variance and the MCMC moments.
fn write_fields(problem: &Problem, outcome: &InferOutcome, out: &Path) -> Result<()> {
    let field = |name, values| PointField {
        name,
        components: 1,
        values,
    };
    let mut fields = vec![field("m_map", &outcome.m_map[..])];
    if let Some(m_true) = &outcome.m_true {
        fields.insert(0, field("m_true", &m_true[..]));
    }
    if !outcome.laplace_variance.is_empty() {
        fields.push(field("laplace_variance", &outcome.laplace_variance[..]));
    }
    if let (Some(mean), Some(variance)) = (&outcome.mean, &outcome.variance) {
        fields.push(field("posterior_mean", &mean[..]));
        fields.push(field("posterior_variance", &variance[..]));
    }
    write_vtu(out.join("fields.vtu"), &problem.mesh(), &fields)
}

/// `trace.svg` and `autocorrelation.svg` of the chains' leading-coefficient traces.
fn write_chain_plots(traces: &[Vec<f64>], out: &Path) -> Result<()> {
    let names: Vec<String> = (0..traces.len()).map(|c| format!("chain {c}")).collect();
    // at most about 5000 points per chain in the plot (every k-th step of a long chain)
    let k = traces
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(0)
        .div_ceil(5000)
        .max(1);
    let thinned: Vec<Vec<f64>> = traces
        .iter()
        .map(|t| t.iter().step_by(k).copied().collect())
        .collect();
    fn series<'a>(values: &'a [Vec<f64>], names: &'a [String]) -> Vec<Series<'a>> {
        values
            .iter()
            .zip(names)
            .map(|(t, n)| Series { name: n, values: t })
            .collect()
    }
    let x_label = if k == 1 {
        "step".to_string()
    } else {
        format!("step / {k}")
    };
    write_text(
        &out.join("trace.svg"),
        &lines(
            "Trace of the leading Laplace coefficient v₁ᵀR(m − m_MAP)",
            &x_label,
            "coefficient",
            &series(&thinned, &names),
        ),
    )?;
    let acf: Vec<Vec<f64>> = traces.iter().map(|t| autocorrelation(t, 200)).collect();
    write_text(
        &out.join("autocorrelation.svg"),
        &lines(
            "Autocorrelation of the leading Laplace coefficient",
            "lag + 1",
            "ρ",
            &series(&acf, &names),
        ),
    )
}

/// A number with four decimals, "-" where it is not finite (`null` in `compare.json`).
fn four(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.4}")
    } else {
        "-".into()
    }
}

/// `compare.md`: the two runs' costs and ESS, the differences, their Monte-Carlo floor.
pub fn compare_markdown(problem: &Problem, c: &CompareOutcome) -> String {
    let (p, s, sum) = (&c.pde, &c.dino, &c.summary);
    let (pk, dk) = (sum.pde.kernel, sum.dino.kernel);
    let (rate_p, rate_s) = (ess_per_second(p), ess_per_second(s));
    let per_solve = |o: &InferOutcome| {
        o.diagnostics()
            .and_then(|d| d.ess_per_pde_solve)
            .filter(|e| e.is_finite())
            .map_or("-".to_string(), |e| format!("{e:.2e}"))
    };
    let ess = |o: &InferOutcome| o.ess_min.map_or("-".into(), |e| format!("{e:.0}"));
    let offline = sum.dino.offline_s.unwrap_or(0.0);
    let break_even = sum.break_even_effective_samples;
    let md = format!(
        "# PDE vs DINO inference: {}\n\n| | PDE ({:?}) | DINO ({:?}) |\n|---|---|---|\n| MAP + Laplace: wall time (s) | {:.1} | {:.1} |\n| MAP + Laplace: PDE solves | {} | {} |\n| MCMC, all steps (resumed ones included): elapsed time (s) | {:.1} | {:.1} |\n| MCMC, all steps: PDE solves | {} | {} |\n| min ESS | {} | {} |\n| ESS / s | {:.2} | {:.2} |\n| ESS per PDE solve | {} | {} |\n\n- MAP relative difference: {}\n- posterior mean relative difference: {}\n- posterior variance relative difference: {}\n- Laplace variance relative difference: {}\n- ESS/s ratio (DINO / PDE): {:.1}\n- offline cost of the surrogate (data + training): {:.0} s; break-even after {} effective samples\n",
        problem.path.display(), pk, dk,
        p.cost.setup_wall_s, s.cost.setup_wall_s, p.cost.setup_pde_solves, s.cost.setup_pde_solves,
        p.cost.mcmc_wall_s, s.cost.mcmc_wall_s, p.cost.mcmc_pde_solves, s.cost.mcmc_pde_solves,
        ess(p), ess(s), rate_p, rate_s, per_solve(p), per_solve(s),
        four(sum.map_relative_difference), four(sum.posterior_mean_relative_difference),
        four(sum.posterior_variance_relative_difference), four(sum.laplace_variance_relative_difference),
        rate_s / rate_p.max(1e-300), offline, break_even.map_or("-".into(), |b| format!("{b:.0}")),
    );
    let spread = |o: &InferOutcome| {
        o.chain_spread
            .map_or("- (one chain)".to_string(), |(m, v)| {
                format!("mean {m:.4}, variance {v:.4}")
            })
    };
    let floor = sum
        .monte_carlo_floor
        .map_or("- (needs two chains per sampler)".to_string(), |f| {
            format!("mean {:.4}, variance {:.4}", f.mean, f.variance)
        });
    let r_hat = |o: &InferOutcome| {
        o.diagnostics()
            .and_then(|d| d.r_hat_max)
            .filter(|r| r.is_finite())
            .map_or("-".to_string(), |r| format!("{r:.3}"))
    };
    let mut md = format!(
        "{md}- largest difference between two chains of the same sampler: PDE {}; DINO {}\n- differences that Monte-Carlo error alone gives (from the spread between chains, were both samplers exact): {floor}\n- largest R̂ over the QoIs (below {R_HAT_CONVERGED}: the chains have mixed): PDE {}; DINO {}\n",
        spread(p),
        spread(s),
        r_hat(p),
        r_hat(s)
    );
    if !dk.is_delayed() {
        md.push_str(&format!("- the DINO chain ({dk:?}) runs on the surrogate alone: it samples the surrogate's approximate posterior, so its differences to the PDE chain include the surrogate's bias\n"));
    }
    md
}
