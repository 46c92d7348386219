//! The files of an OUU run besides report.json: the optimal control (control.npy, control.svg,
//! control_values.svg), quantile functions of Q (qoi_distribution.svg, qoi_fresh.svg), the
//! optimizer's convergence (convergence.svg) and the fields at the optimum (fields.vtu).

use std::path::Path;

use crate::error::Result;
use crate::io::npy::write_vector;
use crate::io::vtu::{write_vtu, PointField};
use crate::ouu::BoundedIteration;
use crate::report::field::mesh_map;
use crate::report::svg::{lines, semilogy, Series};
use crate::report::write_text;
use crate::workflow::ouu::{OptimumFields, QoiValues};

/// The sorted values: the empirical quantile function at ranks i/N.
fn quantiles(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// The quantile functions of Q on the SAA samples (z = 0, optimum, risk-neutral optimum) and,
/// when the PDE check ran, at the optimum on the fresh samples.
fn write_quantile_plots(out: &Path, values: &QoiValues) -> Result<()> {
    // Q values on the x axis would need an xy plot; plot the sorted values against their rank
    let (q_opt, q_zero) = (quantiles(&values.optimum), quantiles(&values.at_zero));
    let q_neutral = values.risk_neutral.as_deref().map(quantiles);
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
    let title = "Quantile function of Q on the SAA samples (sorted Q)";
    let svg = semilogy(title, "sample rank", "Q", &series);
    write_text(&out.join("qoi_distribution.svg"), &svg)?;
    if let Some(q) = values.fresh_at_optimum.as_deref().map(quantiles) {
        let svg = semilogy(
            "Quantile function of Q at the optimum, PDE on fresh samples",
            "sample rank",
            "Q",
            &[Series {
                name: "optimum (PDE, fresh samples)",
                values: &q,
            }],
        );
        write_text(&out.join("qoi_fresh.svg"), &svg)?;
    }
    Ok(())
}

/// The objective J and the projected gradient ‖P(x − ∇J) − x‖∞ per iteration.
fn write_convergence(out: &Path, history: &[BoundedIteration]) -> Result<()> {
    let values: Vec<f64> = history.iter().map(|h| h.value).collect();
    let pg: Vec<f64> = history.iter().map(|h| h.projected_gradient).collect();
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
    write_text(&out.join("convergence.svg"), &svg)
}

/// Writes the control, plots and fields of an OUU optimum `z` into `out`.
pub fn write_outputs(
    out: &Path,
    z: &[f64],
    history: &[BoundedIteration],
    values: &QoiValues,
    fields: &OptimumFields,
) -> Result<()> {
    write_vector(out.join("control.npy"), z)?;
    let title = "Optimal control source Σ z_k φ_k";
    let svg = mesh_map(title, &fields.mesh, &fields.control_source);
    write_text(&out.join("control.svg"), &svg)?;
    write_quantile_plots(out, values)?;
    write_convergence(out, history)?;
    let series = [Series {
        name: "z",
        values: z,
    }];
    let svg = lines("Optimal control strengths z_k", "k", "z_k", &series);
    write_text(&out.join("control_values.svg"), &svg)?;
    let field = |name, values| PointField {
        name,
        components: 1,
        values,
    };
    write_vtu(
        out.join("fields.vtu"),
        &fields.mesh,
        &[
            field("state_at_optimum_sample0", &fields.state_sample0),
            field("target", &fields.target),
            field("control_source", &fields.control_source),
            field("parameter_sample0", &fields.parameter_sample0),
        ],
    )
}
