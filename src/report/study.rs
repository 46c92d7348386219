//! The files of the accuracy study: `study.csv` (one row per trained configuration),
//! `study.md` (the table beside the paper's H1 accuracy) and `accuracy_l2.svg` /
//! `accuracy_h1.svg` (accuracy against the training-set size per network and loss).

use std::path::Path;

use crate::error::Result;
use crate::io::write_atomic;
use crate::report::svg::{lines, Series};
use crate::workflow::coordinates::jacobian_term;
use crate::workflow::study::{paper_h1, StudyConfig, StudyOutcome};

/// Writes the study's files for the rows so far into `out`.
pub fn write_study(out: &Path, config: &StudyConfig, outcome: &StudyOutcome) -> Result<()> {
    let (rows, model_name) = (&outcome.rows, outcome.model.as_str());
    let mut csv = String::from(
        "arch,loss,n_train,l2_accuracy,h1_accuracy,reduced_h1_accuracy,epochs,wall_s\n",
    );
    for r in rows {
        csv.push_str(&format!(
            "{},{},{},{:.6},{:.6},{:.6},{},{:.2}\n",
            r.arch,
            r.loss,
            r.n_train,
            r.l2_accuracy,
            r.h1_accuracy,
            r.reduced_h1_accuracy,
            r.epochs,
            r.wall_s
        ));
    }
    write_atomic(out.join("study.csv"), |w| w.write_all(csv.as_bytes()))?;
    let mut md = format!(
        "# Accuracy study: {}\n\nTest accuracies 1 − sqrt(E[rel. sq. error]) (paper eq. 3.5 metrics) against full Jacobians.\nPaper (DIPNet 100-50, full H1, N = 4096): H1 accuracy {}.\n\n| arch | loss | N | L2 | H1 | reduced H1 |\n|---|---|---|---|---|---|\n",
        config.problem.display(),
        paper_h1(model_name).map_or("not reported".into(), |v| format!("{:.1}%", 100.0 * v))
    );
    for r in rows {
        md.push_str(&format!(
            "| {} | {} | {} | {:.2}% | {:.2}% | {:.2}% |\n",
            r.arch,
            r.loss,
            r.n_train,
            100.0 * r.l2_accuracy,
            100.0 * r.h1_accuracy,
            100.0 * r.reduced_h1_accuracy
        ));
    }
    write_atomic(out.join("study.md"), |w| w.write_all(md.as_bytes()))?;
    for (metric, pick) in [("l2", 0usize), ("h1", 1)] {
        let mut names = Vec::new();
        let mut values = Vec::new();
        for arch in &config.archs {
            let label = arch.label();
            for loss in &config.losses {
                let name = format!("{label} {}", jacobian_term(*loss, 1, 1).name());
                let v: Vec<f64> = config
                    .sizes
                    .iter()
                    .map(|n| {
                        rows.iter()
                            .find(|r| {
                                r.arch == label
                                    && r.loss == jacobian_term(*loss, 1, 1).name()
                                    && r.n_train == *n
                            })
                            .map_or(f64::NAN, |r| {
                                if pick == 0 {
                                    r.l2_accuracy
                                } else {
                                    r.h1_accuracy
                                }
                            })
                    })
                    .collect();
                names.push(name);
                values.push(v);
            }
        }
        let series: Vec<Series> = names
            .iter()
            .zip(&values)
            .map(|(n, v)| Series { name: n, values: v })
            .collect();
        let sizes: Vec<String> = config.sizes.iter().map(|n| n.to_string()).collect();
        let svg = lines(
            &format!(
                "{} accuracy vs training-set size (N = {})",
                metric.to_uppercase(),
                sizes.join(", ")
            ),
            "training-set size (index into N)",
            "accuracy",
            &series,
        );
        write_atomic(out.join(format!("accuracy_{metric}.svg")), |w| {
            w.write_all(svg.as_bytes())
        })?;
    }
    Ok(())
}
