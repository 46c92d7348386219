//! `dino ouu`: risk-averse optimal control under an uncertain parameter, with the PDE or a control
//! surrogate (MR-DINO) behind the same SAA objective, and the check of a surrogate optimum with
//! the PDE on fresh samples.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use rayon::prelude::*;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::io::npy::write_vector;
use crate::io::vtu::{write_vtu, PointField};
use crate::io::write_atomic;
use crate::map::{ControlledMap, Linearization};
use crate::models::ControlledDiffusion;
use crate::nn::{ControlSurrogate, Surrogate};
use crate::ouu::{
    solve_ouu, BoundedLbfgsSettings, ControlQoi, OuuSettings, OuuSolution, QoiStatistics,
    RiskMeasure, SampledQoi,
};
use crate::problem::Problem;
use crate::report::field::heat_map;
use crate::report::svg::{lines, semilogy, Series};
use crate::rng::{stream, Purpose};

/// Risk measures as the CLI names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RiskName {
    /// E[Q]
    Mean,
    /// E[Q] + β Var[Q]
    Meanvar,
    /// CVaR_α[Q] (smoothed Rockafellar–Uryasev)
    Cvar,
}

/// Arguments of `dino ouu`.
#[derive(Debug, Args)]
#[command(
    group = clap::ArgGroup::new("forward").required(true).args(["pde", "surrogate"]),
    allow_negative_numbers = true
)]
pub struct OuuArgs {
    /// Problem file with [control] and [qoi] sections.
    #[arg(long)]
    problem: PathBuf,
    /// Optimize with the PDE.
    #[arg(long)]
    pde: bool,
    /// Optimize with this control surrogate (`dino train --control-data`).
    #[arg(long)]
    surrogate: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = RiskName::Cvar)]
    risk: RiskName,
    /// CVaR level α ∈ (0, 1).
    #[arg(long, default_value_t = 0.95)]
    alpha: f64,
    /// Variance weight β ≥ 0 of the meanvar risk.
    #[arg(long, default_value_t = 1.0)]
    beta: f64,
    /// Smoothing ε > 0 of the CVaR plus function.
    #[arg(long, default_value_t = 1e-4)]
    epsilon: f64,
    /// Control cost γ ≥ 0: adds (γ/2)‖z‖².
    #[arg(long, default_value_t = 0.0)]
    gamma: f64,
    /// SAA sample size N (Luo et al.'s MR-DINO driver uses 64; SOUPy's example 16).
    #[arg(long, default_value_t = 64)]
    samples: usize,
    /// Seed of the SAA samples (and of the fresh check samples).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Maximum optimizer iterations.
    #[arg(long, default_value_t = 100)]
    max_iter: usize,
    /// Stop when the projected gradient's ∞-norm is below this.
    #[arg(long, default_value_t = 1e-5)]
    gtol: f64,
    /// Stop when the relative objective decrease is below this.
    #[arg(long, default_value_t = 1e-7)]
    ftol: f64,
    /// Re-evaluate the optimum with the PDE on this many fresh samples (0: skip).
    #[arg(long, default_value_t = 128)]
    fresh: usize,
    /// report.json of another `dino ouu` run (e.g. the PDE-SAA optimum): its control is
    /// re-evaluated on the same fresh samples and the optimality gap reported.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Start the optimizer at this control (.npy, n_z values in the bounds; e.g. a surrogate's
    /// optimum `control.npy`, to finish its optimization with the PDE) instead of z = 0 (or,
    /// for a surrogate trained around a control, instead of that control).
    #[arg(long)]
    start: Option<PathBuf>,
    /// Skip the risk-neutral (mean) optimization used for comparison.
    #[arg(long)]
    no_risk_neutral: bool,
    /// Override the problem's mesh size.
    #[arg(long)]
    mesh: Option<i64>,
    /// Output folder.
    #[arg(long, default_value = "out/ouu")]
    out: PathBuf,
}

fn risk_measure(args: &OuuArgs) -> Result<RiskMeasure> {
    let bad = |field: &str, expected: &str, v: f64| {
        Err(Error::invalid("command line", field, expected, v))
    };
    if !(args.gamma >= 0.0 && args.gamma.is_finite()) {
        return bad("--gamma", "a non-negative number", args.gamma);
    }
    // α is also the level of the reported VaR/CVaR statistics for every risk measure
    if !(args.alpha > 0.0 && args.alpha < 1.0) {
        return bad("--alpha", "a level in (0, 1)", args.alpha);
    }
    Ok(match args.risk {
        RiskName::Mean => RiskMeasure::Mean,
        RiskName::Meanvar => {
            if !(args.beta >= 0.0 && args.beta.is_finite()) {
                return bad("--beta", "a non-negative number", args.beta);
            }
            RiskMeasure::MeanVariance { beta: args.beta }
        }
        RiskName::Cvar => {
            if !(args.epsilon > 0.0 && args.epsilon.is_finite()) {
                return bad("--epsilon", "a positive number", args.epsilon);
            }
            RiskMeasure::Cvar {
                alpha: args.alpha,
                epsilon: args.epsilon,
            }
        }
    })
}

/// The control surrogate in a model folder, refused when it has no control input or was trained
/// for another problem.
fn load_control_surrogate(
    dir: &Path,
    problem: &Problem,
    pde: &ControlledDiffusion,
) -> Result<(ControlSurrogate, crate::nn::ModelRecord)> {
    let s = Surrogate::load(dir)?;
    if s.record.problem.control_dim.is_none() {
        return Err(Error::invalid(
            dir.join("model.json").display().to_string(),
            "problem.control_dim",
            "a surrogate with a control input (trained with `dino train --control-data`)",
            "a surrogate of m ↦ q without a control input",
        ));
    }
    s.check_problem(problem, dir)?;
    Ok((ControlSurrogate::new(s.net, pde)?, s.record))
}

/// Parameter sample i of the SAA (fresh check samples use indices from 2⁴⁰ on).
fn parameter_samples(
    problem: &Problem,
    seed: u64,
    range: std::ops::Range<u64>,
) -> Result<Vec<Vec<f64>>> {
    let prior = problem.prior()?;
    Ok(range
        .into_par_iter()
        .map(|i| prior.sample(&mut stream(seed, Purpose::OuuSample, i)))
        .collect())
}

const FRESH_OFFSET: u64 = 1 << 40;

/// Q(z, m_j) with the PDE on bound fresh samples; a failed solve is an error naming the sample.
fn pde_values(fresh: &dyn SampledQoi, z: &[f64]) -> Result<Vec<f64>> {
    fresh
        .values(z)
        .into_iter()
        .enumerate()
        .map(|(j, r)| {
            r.map_err(|e| Error::numerical(format!("PDE check, fresh sample {j}"), e.to_string()))
        })
        .collect()
}

fn solution_json(s: &OuuSolution) -> Value {
    json!({
        "z": s.z,
        "t": s.t,
        "objective": s.objective,
        "iterations": s.iterations,
        "evaluations": s.evaluations,
        "stop": s.stop,
        "wall_s": s.wall_s,
        "failures": s.failures,
    })
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomic(path, |w| w.write_all(text.as_bytes()))
}

/// The control of another run's report.json, checked against this problem's control.
fn reference_control(path: &Path, n_z: usize, bounds: [f64; 2]) -> Result<(Vec<f64>, Value)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let report: Value = serde_json::from_str(&text)
        .map_err(|e| Error::parse(path, format!("not a `dino ouu` report.json: {e}")))?;
    let z: Vec<f64> = report["optimum"]["z"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    crate::models::controlled::check_control(&z, n_z, bounds, &path.display().to_string())?;
    Ok((z, report))
}

pub fn run(args: OuuArgs) -> Result<()> {
    let risk = risk_measure(&args)?;
    if args.samples == 0 {
        return Err(Error::invalid(
            "command line",
            "--samples",
            "a positive integer",
            0,
        ));
    }
    let problem = super::load_problem(&args.problem, args.mesh)?;
    let pde = problem.control_problem()?;
    let n_z = ControlledMap::control_dim(&pde);
    let bounds = pde.bounds();
    let surrogate = args
        .surrogate
        .as_ref()
        .map(|dir| load_control_surrogate(dir, &problem, &pde))
        .transpose()?;
    let reference = args
        .reference
        .as_ref()
        .map(|p| reference_control(p, n_z, bounds))
        .transpose()?;
    let (qoi, label): (&dyn ControlQoi, String) = match (&surrogate, &args.surrogate) {
        (Some((s, _)), Some(dir)) => (s, format!("surrogate {}", dir.display())),
        _ => (&pde, "PDE".to_string()),
    };
    let samples = parameter_samples(&problem, args.seed, 0..args.samples as u64)?;
    let settings = OuuSettings {
        risk,
        control_cost: args.gamma,
        bounds,
        optimizer: BoundedLbfgsSettings {
            max_iterations: args.max_iter,
            gtol: args.gtol,
            ftol: args.ftol,
            ..Default::default()
        },
    };
    // a surrogate trained around a control is valid near it, not necessarily at z = 0
    let region = surrogate
        .as_ref()
        .and_then(|(_, record)| record.training.as_ref())
        .and_then(|t| t.control_region.as_ref());
    let (z_start, start_label) = match (&args.start, region) {
        (Some(path), _) => {
            let z = crate::io::npy::read_vector(path, n_z, "--start")?;
            crate::models::controlled::check_control(&z, n_z, bounds, &path.display().to_string())?;
            (z, path.display().to_string())
        }
        (None, Some(r)) => (
            r.centre.clone(),
            "the surrogate's training-region centre".into(),
        ),
        (None, None) => (vec![0.0; n_z], "z = 0".into()),
    };
    let z0 = vec![0.0; n_z];
    eprintln!(
        "{} optimization of {} over {} samples with the {label} ({n_z} controls in [{}, {}]), starting at {start_label}",
        risk.name(),
        problem.path.display(),
        args.samples,
        bounds[0],
        bounds[1]
    );
    let solution = solve_ouu(qoi, &samples, &z_start, &settings, risk.name(), true)?;
    for f in &solution.failures {
        eprintln!("warning: a trial step failed and was rejected: {f}");
    }
    let neutral = if risk != RiskMeasure::Mean && !args.no_risk_neutral {
        let s = OuuSettings {
            risk: RiskMeasure::Mean,
            ..settings
        };
        Some(solve_ouu(qoi, &samples, &z0, &s, "risk-neutral", true)?)
    } else {
        None
    };
    let alpha = args.alpha;
    // Q on the SAA samples at z = 0 with the optimizing model
    let at_zero: Vec<f64> = qoi
        .bind(&samples)?
        .values(&z0)
        .into_iter()
        .collect::<Result<_>>()?;
    // the PDE on fresh samples
    let fresh = if args.fresh > 0 {
        let ms = parameter_samples(
            &problem,
            args.seed,
            FRESH_OFFSET..FRESH_OFFSET + args.fresh as u64,
        )?;
        let t = std::time::Instant::now();
        let bound = pde.bind(&ms)?;
        let q_opt = pde_values(bound.as_ref(), &solution.z)?;
        let q_ref = reference
            .as_ref()
            .map(|(z, _)| pde_values(bound.as_ref(), z))
            .transpose()?;
        let q_neutral = neutral
            .as_ref()
            .map(|n| pde_values(bound.as_ref(), &n.z))
            .transpose()?;
        let q_zero = pde_values(bound.as_ref(), &z0)?;
        eprintln!(
            "PDE check on {} fresh samples in {:.1} s",
            args.fresh,
            t.elapsed().as_secs_f64()
        );
        Some((q_opt, q_ref, q_neutral, q_zero))
    } else {
        None
    };
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let stats = |q: &[f64]| QoiStatistics::of(q, alpha);
    let mut report = json!({
        "problem": problem.path.display().to_string(),
        "problem_hash": problem.hash(),
        "model": label,
        "risk": risk,
        "control_cost": args.gamma,
        "samples": args.samples,
        "seed": args.seed,
        "bounds": bounds,
        "optimizer": settings.optimizer,
        "start": start_label,
        "optimum": solution_json(&solution),
        "saa_statistics": {
            "at_optimum": stats(&solution.qoi),
            "at_zero": stats(&at_zero),
        },
        "online_wall_s": solution.wall_s,
        "history": solution.history,
    });
    if let Some((_, record)) = &surrogate {
        let training = record.training.as_ref();
        report["surrogate"] = json!({
            "folder": args.surrogate.as_ref().map(|p| p.display().to_string()),
            "architecture": record.architecture,
            "test_metrics": record.test_metrics,
            "data_wall_s": training.map(|t| t.data_wall_s),
            "training_wall_s": training.map(|t| t.wall_s),
        });
        if let Some(region) = region {
            let (outside, distance) = region.excess(&solution.z, bounds);
            report["surrogate"]["training_region"] = json!({
                "centre": region.centre,
                "radius": region.radius,
                "optimum_components_outside": outside,
                "optimum_max_distance_outside": distance,
            });
            if outside > 0 {
                eprintln!(
                    "warning: the optimum leaves the region the surrogate was trained on ({outside} of {n_z} controls outside it, by up to {distance:.3}); its predictions there are extrapolations: refine around the new optimum"
                );
            }
        }
    }
    if let Some(n) = &neutral {
        report["risk_neutral"] = solution_json(n);
        report["saa_statistics"]["at_risk_neutral"] = json!(stats(&n.qoi));
    }
    if let Some((q_opt, q_ref, q_neutral, q_zero)) = &fresh {
        let r_opt = stats(q_opt).risk(risk);
        let mut check = json!({
            "samples": args.fresh,
            "at_optimum": stats(q_opt),
            "risk_at_optimum": r_opt,
            "at_zero": stats(q_zero),
        });
        if let Some(q) = q_neutral {
            check["at_risk_neutral"] = json!(stats(q));
        }
        if let (Some(q), Some((_, ref_report))) = (q_ref, &reference) {
            let r_ref = stats(q).risk(risk);
            let gap = (r_opt - r_ref) / r_ref.abs().max(f64::MIN_POSITIVE);
            check["reference"] = json!({
                "report": args.reference.as_ref().map(|p| p.display().to_string()),
                "model": ref_report["model"],
                "at_optimum": stats(q),
                "risk_at_optimum": r_ref,
                "optimality_gap": gap,
                "online_wall_s": ref_report["online_wall_s"],
                "online_speedup": ref_report["online_wall_s"].as_f64().map(|w| w / solution.wall_s),
            });
            eprintln!(
                "PDE-evaluated {} on fresh samples: {:.6e} here vs {:.6e} for the reference ({}): optimality gap {:+.2}%; online time {:.3} s vs {:.3} s",
                risk.name(),
                r_opt,
                r_ref,
                ref_report["model"].as_str().unwrap_or("?"),
                100.0 * gap,
                solution.wall_s,
                ref_report["online_wall_s"].as_f64().unwrap_or(f64::NAN)
            );
        }
        report["pde_check"] = check;
    }
    write_outputs(
        &args,
        &problem,
        &pde,
        &samples,
        &solution,
        neutral.as_ref(),
        &at_zero,
        fresh.as_ref().map(|f| &f.0),
    )?;
    write_text(
        &args.out.join("report.json"),
        &serde_json::to_string_pretty(&report).expect("serializable"),
    )?;
    let s = stats(&solution.qoi);
    eprintln!(
        "optimum after {} iterations ({} objective evaluations × {} samples, {:.2} s, {:?}): objective {:.6e}; on the SAA samples mean Q {:.4e}, CVaR_{} {:.4e} (z = 0: mean {:.4e}, CVaR {:.4e})",
        solution.iterations,
        solution.evaluations,
        args.samples,
        solution.wall_s,
        solution.stop,
        solution.objective,
        s.mean,
        alpha,
        s.cvar_alpha,
        stats(&at_zero).mean,
        stats(&at_zero).cvar_alpha,
    );
    eprintln!(
        "wrote {}/report.json, control.npy, control.svg, qoi_distribution.svg, convergence.svg, fields.vtu",
        args.out.display()
    );
    Ok(())
}

/// Empirical CDF points (sorted values, i/N).
fn ecdf(values: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    let p = (1..=v.len()).map(|i| i as f64 / n).collect();
    (v, p)
}

#[allow(clippy::too_many_arguments)]
fn write_outputs(
    args: &OuuArgs,
    problem: &Problem,
    pde: &ControlledDiffusion,
    samples: &[Vec<f64>],
    solution: &OuuSolution,
    neutral: Option<&OuuSolution>,
    at_zero: &[f64],
    fresh_at_optimum: Option<&Vec<f64>>,
) -> Result<()> {
    let out = &args.out;
    write_vector(out.join("control.npy"), &solution.z)?;
    let n = problem.mesh_size();
    let field = pde.control_field(&solution.z);
    write_text(
        &out.join("control.svg"),
        &heat_map("Optimal control source Σ z_k φ_k", n, &field),
    )?;
    // QoI distributions as empirical CDFs: Q values on the x axis would need an xy plot; plot the
    // sorted values against their rank instead (quantile functions)
    let quantiles = |q: &[f64]| ecdf(q).0;
    let (q_opt, q_zero) = (quantiles(&solution.qoi), quantiles(at_zero));
    let q_neutral = neutral.map(|n| quantiles(&n.qoi));
    let mut series = vec![
        Series {
            name: "z = 0",
            values: &q_zero,
        },
        Series {
            name: "optimum",
            values: &q_opt,
        },
    ];
    if let Some(q) = &q_neutral {
        series.push(Series {
            name: "risk-neutral optimum",
            values: q,
        });
    }
    let q_fresh = fresh_at_optimum.map(|q| quantiles(q));
    let svg = semilogy(
        "Quantile function of Q on the SAA samples (sorted Q)",
        "sample rank",
        "Q",
        &series,
    );
    write_text(&out.join("qoi_distribution.svg"), &svg)?;
    if let Some(q) = &q_fresh {
        let svg = semilogy(
            "Quantile function of Q at the optimum, PDE on fresh samples",
            "sample rank",
            "Q",
            &[Series {
                name: "optimum (PDE, fresh samples)",
                values: q,
            }],
        );
        write_text(&out.join("qoi_fresh.svg"), &svg)?;
    }
    let values: Vec<f64> = solution.history.iter().map(|h| h.value).collect();
    let pg: Vec<f64> = solution
        .history
        .iter()
        .map(|h| h.projected_gradient)
        .collect();
    let svg = semilogy(
        "Convergence",
        "iteration",
        "objective, ‖P(x − ∇J) − x‖∞",
        &[
            Series {
                name: "objective J",
                values: &values,
            },
            Series {
                name: "projected gradient",
                values: &pg,
            },
        ],
    );
    write_text(&out.join("convergence.svg"), &svg)?;
    let control_values: Vec<f64> = solution.z.clone();
    let svg = lines(
        "Optimal control strengths z_k",
        "k",
        "z_k",
        &[Series {
            name: "z",
            values: &control_values,
        }],
    );
    write_text(&out.join("control_values.svg"), &svg)?;
    // the PDE state at the optimum for the first SAA sample
    let state = pde.solve(&solution.z, &samples[0], None)?;
    write_vtu(
        out.join("fields.vtu"),
        pde.mesh(),
        &[
            PointField {
                name: "state_at_optimum_sample0",
                components: 1,
                values: state.output(),
            },
            PointField {
                name: "target",
                components: 1,
                values: pde.target(),
            },
            PointField {
                name: "control_source",
                components: 1,
                values: &field,
            },
            PointField {
                name: "parameter_sample0",
                components: 1,
                values: &samples[0],
            },
        ],
    )
}
