//! `dino study`: the paper's accuracy study (Figs 5–13): test accuracies of DIPNets of several
//! ranks and of the generic network trained with the L2 / H1 / reduced-H1 / MS losses on growing
//! training sets, as a CSV, plots and a markdown table beside the paper's numbers.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use ndarray::Array3;
use rayon::prelude::*;

use super::train::{jacobian_term, reduced_samples, InputChoice, LossName};
use crate::bases::Basis;
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::nn::evaluate::{test_metrics, TestJacobians};
use crate::nn::train::{train_network, TrainSettings};
use crate::nn::{DipNet, Loss, Mlp, MlpShape};
use crate::report::svg::{lines, Series};

/// Arguments of `dino study`.
#[derive(Debug, Args)]
pub struct StudyArgs {
    /// Problem file (TOML).
    #[arg(long)]
    problem: PathBuf,
    /// Training data (projected on the basis's encoder, or full Jacobians); the first N samples
    /// are used for each training-set size N. The generic network's Jacobian losses need full
    /// Jacobians; with projected data it is trained with the L2 loss only.
    #[arg(long, required = true, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Test data (full test Jacobians are computed once with the PDE when not stored).
    #[arg(long, required = true, num_args = 1..)]
    test: Vec<PathBuf>,
    /// Input basis folder (active subspace); needed for DIPNets.
    #[arg(long)]
    basis: Option<PathBuf>,
    /// Training-set sizes.
    #[arg(long, value_delimiter = ',', default_value = "64,256,1024,4096")]
    sizes: Vec<usize>,
    /// Losses.
    #[arg(
        long,
        value_delimiter = ',',
        value_enum,
        default_value = "l2,h1,reduced-h1,ms"
    )]
    losses: Vec<LossName>,
    /// Networks: DIPNet ranks r_M-r_Q, or `generic` (all d_M inputs, r_Q = min(50, d_Q)).
    #[arg(long, value_delimiter = ',', default_value = "100-50,50-50,generic")]
    archs: Vec<String>,
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    /// At least this many optimizer steps per configuration (small N gets more epochs, so that
    /// every size is trained to a comparable number of Adam steps).
    #[arg(long, default_value_t = 3200)]
    min_steps: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder (study.csv, study.md, accuracy_*.svg).
    #[arg(long)]
    out: PathBuf,
}

/// One trained configuration.
#[derive(Debug, Clone, serde::Serialize)]
struct Row {
    arch: String,
    loss: String,
    n_train: usize,
    l2_accuracy: f64,
    h1_accuracy: f64,
    reduced_h1_accuracy: f64,
    epochs: usize,
    wall_s: f64,
}

/// A network of the study.
#[derive(Debug, Clone, Copy, PartialEq)]
enum StudyArch {
    /// DIPNet r_M-r_Q.
    Dipnet(usize, usize),
    /// The generic network.
    Generic,
}

impl StudyArch {
    /// The label in the CSV, table and plots.
    fn label(self) -> String {
        match self {
            StudyArch::Dipnet(r_m, r_q) => format!("DIPNet {r_m}-{r_q}"),
            StudyArch::Generic => "Generic".into(),
        }
    }
}

fn parse_arch(s: &str) -> Result<StudyArch> {
    let bad = || {
        Error::invalid(
            "command line",
            "--archs",
            "ranks r_M-r_Q such as 100-50, or generic",
            s,
        )
    };
    if s.trim().eq_ignore_ascii_case("generic") {
        return Ok(StudyArch::Generic);
    }
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    Ok(StudyArch::Dipnet(
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    ))
}

/// The paper's reported H1 accuracies (DIPNet 100-50, full H1 loss, N = 4096).
fn paper_h1(problem_model: &str) -> Option<f64> {
    match problem_model.replace('-', "_").as_str() {
        "poisson" => Some(0.421),
        "reaction_diffusion" => Some(0.415),
        "convection_reaction_diffusion" => Some(0.747),
        _ => None,
    }
}

pub fn run(args: StudyArgs) -> Result<()> {
    let problem = crate::problem::Problem::load(&args.problem)?;
    let data = super::data::load_for(&problem, &args.data)?;
    let test = super::data::load_for(&problem, &args.test)?;
    let model = problem.model()?;
    let archs: Vec<StudyArch> = args
        .archs
        .iter()
        .map(|a| parse_arch(a))
        .collect::<Result<_>>()?;
    let basis = match &args.basis {
        Some(dir) => Some(Basis::load(dir)?),
        None if archs.iter().any(|a| matches!(a, StudyArch::Dipnet(..))) => {
            return Err(Error::invalid(
                "command line",
                "--basis",
                "an input basis folder for the DIPNets of --archs",
                "none",
            ))
        }
        None => None,
    };
    let full_jacobians = data.manifest.jacobian == crate::data::JacobianKind::Full;
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    // full test Jacobians, once
    let test_jac: Array3<f32> = match (&test.jacobian, test.manifest.jacobian) {
        (Some(j), crate::data::JacobianKind::Full) => j.clone(),
        _ => {
            eprintln!(
                "computing {} full test Jacobians with the PDE …",
                test.len()
            );
            let rows: Vec<ndarray::Array2<f32>> = (0..test.len())
                .into_par_iter()
                .map(|i| -> Result<_> {
                    Ok(model
                        .linearize(test.m.row(i).as_slice().expect("row-major"))?
                        .jacobian()
                        .mapv(|v| v as f32))
                })
                .collect::<Result<_>>()?;
            let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
            ndarray::stack(ndarray::Axis(0), &views).expect("equal shapes")
        }
    };
    let device = burn::tensor::Device::flex().autodiff();
    let mut rows = Vec::new();
    for &arch in &archs {
        let (input, r_q) = match (arch, &basis, &args.basis) {
            (StudyArch::Dipnet(r_m, r_q), Some(basis), Some(dir)) => (
                InputChoice::Basis {
                    basis,
                    dir,
                    rank: r_m,
                },
                r_q,
            ),
            _ => (InputChoice::Identity, data.q.ncols().min(50)),
        };
        let losses: Vec<LossName> = match arch {
            StudyArch::Generic if !full_jacobians => {
                eprintln!("the generic network is trained with the L2 loss only: its Jacobian losses need full Jacobian data (dino generate --jacobian full)");
                args.losses
                    .iter()
                    .copied()
                    .filter(|&l| l == LossName::L2)
                    .collect()
            }
            _ => args.losses.clone(),
        };
        for &n in &args.sizes {
            if n > data.len() {
                return Err(Error::invalid(
                    "command line",
                    "--sizes",
                    format!("sizes up to the {} training samples", data.len()),
                    n,
                ));
            }
            // the whole set is borrowed, not copied (full Jacobians: 3.5 GB at N = 4096)
            let head;
            let subset = if n == data.len() {
                &data
            } else {
                head = data.head(n);
                &head
            };
            let with_jacobians = losses.iter().any(|&l| l != LossName::L2);
            let (coords, samples, _) = reduced_samples(subset, input, r_q, with_jacobians)?;
            let r_m = coords.input_basis.rank();
            let (train_set, validation) = samples.split(0.1, args.seed);
            for &loss_name in &losses {
                let term = jacobian_term(loss_name, r_q.min(r_m), 10);
                let loss = Loss::with_term(term);
                let batches = train_set.count.div_ceil(args.batch_size.max(1)).max(1);
                let epochs = args.epochs.max(args.min_steps.div_ceil(batches));
                let settings = TrainSettings {
                    epochs,
                    batch_size: args.batch_size.min(train_set.count.max(1)),
                    learning_rate: args.lr,
                    final_learning_rate: args.lr / 10.0,
                    patience: Some(epochs / 2 + 1),
                    seed: args.seed,
                    progress: false,
                    resume_dir: None,
                };
                let shape = MlpShape {
                    input: r_m,
                    width: 50,
                    depth: 6,
                    output: r_q,
                };
                let t = Instant::now();
                let outcome = train_network(
                    Mlp::new(shape, args.seed, &device),
                    &train_set,
                    validation.as_ref(),
                    loss,
                    &settings,
                    &device,
                    &mut |_, _| Ok(()),
                )?;
                let net = DipNet::new(&outcome.mlp, coords.clone());
                let m = test_metrics(
                    &net,
                    None,
                    &test.m,
                    &test.q,
                    TestJacobians::Stored(&test_jac),
                )?;
                let row = Row {
                    arch: arch.label(),
                    loss: term.name().into(),
                    n_train: n,
                    l2_accuracy: m.l2_accuracy,
                    h1_accuracy: m.h1_accuracy.unwrap_or(f64::NAN),
                    reduced_h1_accuracy: m.reduced_h1_accuracy.unwrap_or(f64::NAN),
                    epochs: outcome.history.len(),
                    wall_s: t.elapsed().as_secs_f64(),
                };
                eprintln!(
                    "{} {:>10} N = {:>5}: L2 {:.2}%  H1 {:.2}%  reduced H1 {:.2}%  ({:.0} s)",
                    row.arch,
                    row.loss,
                    n,
                    100.0 * row.l2_accuracy,
                    100.0 * row.h1_accuracy,
                    100.0 * row.reduced_h1_accuracy,
                    row.wall_s
                );
                rows.push(row);
                write_outputs(&args, &rows, model.name())?;
            }
        }
    }
    eprintln!(
        "wrote {}/study.csv, study.md, accuracy_l2.svg, accuracy_h1.svg",
        args.out.display()
    );
    Ok(())
}

fn write_outputs(args: &StudyArgs, rows: &[Row], model_name: &str) -> Result<()> {
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
    write_atomic(args.out.join("study.csv"), |w| w.write_all(csv.as_bytes()))?;
    let mut md = format!(
        "# Accuracy study: {}\n\nTest accuracies 1 − sqrt(E[rel. sq. error]) (paper eq. 3.5 metrics) against full Jacobians.\nPaper (DIPNet 100-50, full H1, N = 4096): H1 accuracy {}.\n\n| arch | loss | N | L2 | H1 | reduced H1 |\n|---|---|---|---|---|---|\n",
        args.problem.display(),
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
    write_atomic(args.out.join("study.md"), |w| w.write_all(md.as_bytes()))?;
    for (metric, pick) in [("l2", 0usize), ("h1", 1)] {
        let mut names = Vec::new();
        let mut values = Vec::new();
        for arch in &args.archs {
            let label = parse_arch(arch)?.label();
            for loss in &args.losses {
                let name = format!("{label} {}", jacobian_term(*loss, 1, 1).name());
                let v: Vec<f64> = args
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
        let sizes: Vec<String> = args.sizes.iter().map(|n| n.to_string()).collect();
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
        write_atomic(args.out.join(format!("accuracy_{metric}.svg")), |w| {
            w.write_all(svg.as_bytes())
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn paper_numbers_are_found_for_every_model_name_spelling() {
        assert_eq!(super::paper_h1("poisson"), Some(0.421));
        assert_eq!(super::paper_h1("reaction_diffusion"), Some(0.415));
        assert_eq!(super::paper_h1("reaction-diffusion"), Some(0.415));
        assert_eq!(
            super::paper_h1("convection_reaction_diffusion"),
            Some(0.747)
        );
        assert_eq!(super::paper_h1("navier_stokes"), None);
    }
}
