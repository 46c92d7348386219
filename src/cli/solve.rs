//! `dino solve`: one forward solve with optional Jacobian action, full Jacobian and .vtu output.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use crate::error::Result;
use crate::io::npy::{read_vector, write_matrix};
use crate::io::vtu::{write_vtu, PointField};
use crate::io::write_atomic;
use crate::report::solve::{Parameter, SolveReport, Timings};
use crate::rng::{stream, Purpose};

/// Arguments of `dino solve`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("parameter").required(true).args(["param", "sample"]))]
pub struct SolveArgs {
    /// Problem file (TOML).
    #[arg(long)]
    problem: PathBuf,
    /// Parameter m: 1-D float64 .npy of nodal values, vertex k = j (n+1) + i at (i/n, j/n).
    #[arg(long)]
    param: Option<PathBuf>,
    /// Draw m from the prior with this seed instead.
    #[arg(long)]
    sample: Option<u64>,
    /// Direction v (1-D float64 .npy, same layout as m): report J v as "jv".
    #[arg(long)]
    direction: Option<PathBuf>,
    /// Write the full d_Q × d_M Jacobian here (2-D float64 .npy).
    #[arg(long)]
    jacobian: Option<PathBuf>,
    /// Write the JSON result here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write state and parameter as a ParaView .vtu file.
    #[arg(long)]
    vtk: Option<PathBuf>,
    /// Override the problem's mesh size (cells per side).
    #[arg(long)]
    mesh: Option<i64>,
}

pub fn run(args: SolveArgs) -> Result<()> {
    let start = Instant::now();
    let problem = super::load_problem(&args.problem, args.mesh)?;
    let model = problem.model()?;
    let d_m = model.input_dim();
    let (m, parameter) = match (&args.param, args.sample) {
        (Some(path), _) => (
            read_vector(path, d_m, "--param")?,
            Parameter::File { file: path.clone() },
        ),
        (None, Some(seed)) => {
            let prior = problem.prior()?;
            (
                prior.sample(&mut stream(seed, Purpose::PriorSample, 0)),
                Parameter::PriorSample {
                    prior_sample_seed: seed,
                },
            )
        }
        (None, None) => unreachable!("clap requires --param or --sample"),
    };
    let direction = args
        .direction
        .as_ref()
        .map(|p| read_vector(p, d_m, "--direction"))
        .transpose()?;

    let lin = model.solve_pde(&m)?;
    let stats = lin.stats();
    let iterated = stats.newton_iterations > 0;
    let mut report = SolveReport {
        problem: problem.path.clone(),
        model: model.name().to_string(),
        mesh: problem.mesh_size(),
        input_dim: d_m,
        output_dim: model.output_dim(),
        parameter,
        q: lin.output().to_vec(),
        newton_iterations: iterated.then_some(stats.newton_iterations),
        residual_norms: iterated.then(|| stats.residual_norms.clone()),
        jv: None,
        jacobian_file: None,
        vtk_file: None,
        timings_s: Timings {
            assembly: stats.assembly_s,
            factorization: stats.factorization_s,
            solve: stats.solve_s,
            jvp: None,
            jacobian: None,
            total: 0.0,
        },
    };
    if let Some(v) = direction {
        let t0 = Instant::now();
        report.jv = Some(lin.jvp(&v));
        report.timings_s.jvp = Some(t0.elapsed().as_secs_f64());
    }
    if let Some(path) = &args.jacobian {
        let t0 = Instant::now();
        let jac = lin.jacobian();
        report.timings_s.jacobian = Some(t0.elapsed().as_secs_f64());
        write_matrix(path, &jac)?;
        report.jacobian_file = Some(path.clone());
    }
    if let Some(path) = &args.vtk {
        let mut fields = vec![PointField {
            name: "parameter",
            components: 1,
            values: &m,
        }];
        // an external model shows dino no state
        if lin.state().len() == model.mesh().num_vertices() {
            fields.insert(
                0,
                PointField {
                    name: "state",
                    components: 1,
                    values: lin.state(),
                },
            );
        }
        for (name, components, values) in model.auxiliary_fields() {
            fields.push(PointField {
                name,
                components,
                values,
            });
        }
        write_vtu(path, model.mesh(), &fields)?;
        report.vtk_file = Some(path.clone());
    }
    report.timings_s.total = start.elapsed().as_secs_f64();
    let text = serde_json::to_string_pretty(&report).expect("JSON of numbers and strings");
    match &args.out {
        Some(path) => {
            write_atomic(path, |w| writeln!(w, "{text}"))?;
            let mut written = vec![path.display().to_string()];
            written.extend(
                args.jacobian
                    .iter()
                    .chain(&args.vtk)
                    .map(|p| p.display().to_string()),
            );
            eprintln!(
                "solved {} on the {} mesh: {} observables in {:.1} ms; wrote {}",
                model.name(),
                problem.mesh_label(),
                model.output_dim(),
                1e3 * start.elapsed().as_secs_f64(),
                written.join(", "),
            );
            Ok(())
        }
        None => {
            println!("{text}");
            Ok(())
        }
    }
}
