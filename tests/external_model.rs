//! Any UM-Bridge model as dino's PDE (`[pde] model = "umbridge"`): `dino serve` of a built-in
//! problem driven as an external model gives bitwise the in-process data; a model written in
//! Python behind the official `umbridge` server (tests/umbridge/model.py) is driven by
//! `generate` (full and projected Jacobians) and `infer --pde --method map`, its derivatives
//! pass a Taylor test through the client; an Evaluate-only model gets L2 data and a clear
//! error for derivatives; a server that dies mid-`generate` gives an error naming it, and the
//! same command resumes to the same data once it is back.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use dino::data::load;
use dino::map::{DifferentiableMap, JacobianNeed};
use dino::umbridge::client::{ClientSettings, UmBridgeModel};
use ndarray::Array2;
use ndarray_npy::write_npy;

const POISSON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/problems/poisson.toml");
const MODEL_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/umbridge/model.py");
/// Vertices of the 12 × 12 mesh: the Python model's input size.
const D_M: usize = 169;

/// A problem file over the 12 × 12 mesh with the Poisson prior and the model at `urls`.
fn problem_file(dir: &Path, urls: &[String], extra: &str) -> PathBuf {
    let url = match urls {
        [one] => format!("{one:?}"),
        many => format!("{many:?}"),
    };
    let text = format!(
        r#"[mesh]
n = 12

[pde]
model = "umbridge"
url = {url}
{extra}

[prior]
gamma = 0.1
delta = 0.5
anisotropy = {{ theta0 = 2.0, theta1 = 0.5, alpha = 0.7853981633974483 }}
robin = true
mean = 0.0

[noise]
relative = 0.01
"#
    );
    let path = dir.join("external.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn python_model(port: u16, d_m: usize, flags: &[&str]) -> Server {
    let mut command = Command::new("python3");
    command
        .arg(MODEL_PY)
        .args([port.to_string(), d_m.to_string()])
        .args(flags)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Server::spawn(command, port)
}

fn dino_serve(port: u16) -> Server {
    Server::spawn(dino_serve_command(POISSON, 12, 2, port), port)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn generate<'a>(problem: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "generate",
        "--problem",
        problem,
        "--samples",
        "12",
        "--seed",
        "3",
        "--chunk-size",
        "4",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn dino_serve_driven_as_an_external_model_gives_the_in_process_data_bitwise() {
    let port = free_port();
    let _server = dino_serve(port);
    let dir = tempfile::tempdir().unwrap();
    let problem = problem_file(dir.path(), &[url(port)], "");
    let (remote, local) = (dir.path().join("remote"), dir.path().join("local"));
    ok(&generate(s(&problem), s(&remote), &[]));
    ok(&generate(POISSON, s(&local), &["--mesh", "12"]));
    let (remote, local) = (load(&[remote]).unwrap(), load(&[local]).unwrap());
    assert_eq!(remote.m, local.m, "the same prior samples");
    assert_eq!(remote.q, local.q, "q through HTTP + JSON, bitwise");
    assert_eq!(remote.jacobian, local.jacobian, "Jacobians, bitwise");
}

#[test]
fn a_python_model_passes_a_taylor_test_through_the_client_and_is_driven_by_generate_and_infer() {
    let port = free_port();
    let _server = python_model(port, D_M, &[]);
    let model = UmBridgeModel::connect(
        &[url(port)],
        "forward",
        serde_json::json!({}),
        ClientSettings::default(),
    )
    .unwrap();
    assert_eq!((model.input_dim(), model.output_dim()), (D_M, 8));
    assert!(model.support().gradient && model.support().apply_jacobian);

    // Taylor: ‖q(m + εv) − q(m) − ε J v‖ = O(ε²), with J v from the full Jacobian (Gradient
    // requests) and from ApplyJacobian (projected on v)
    let m: Vec<f64> = (0..D_M).map(|j| (0.3 * j as f64).sin()).collect();
    let v: Vec<f64> = (0..D_M).map(|j| (0.7 * j as f64).cos()).collect();
    let lin = model.linearize(&m).unwrap();
    let jv = lin.jvp(&v);
    let basis = Array2::from_shape_fn((D_M, 1), |(j, _)| v[j]);
    let (q, jv_projected) = model
        .output_and_jacobian(&m, JacobianNeed::Projected(&basis))
        .unwrap();
    let jv_projected = jv_projected.unwrap().column(0).to_vec();
    assert!(norm(&axpy(&jv, -1.0, &jv_projected)) < 1e-12 * norm(&jv));
    let remainder = |eps: f64| {
        let qe = model.evaluate(&axpy(&m, eps, &v)).unwrap();
        let linear = axpy(&q, eps, &jv);
        norm(&axpy(&qe, -1.0, &linear))
    };
    let (r1, r2) = (remainder(1e-2), remainder(5e-3));
    let slope = (r1 / r2).log2();
    assert!((slope - 2.0).abs() < 0.1, "Taylor slope {slope}");

    // generate: full and projected Jacobians (r = 3 ≤ d_Q: 3 ApplyJacobian requests)
    let dir = tempfile::tempdir().unwrap();
    let problem = problem_file(dir.path(), &[url(port)], "");
    let (full, projected) = (dir.path().join("full"), dir.path().join("projected"));
    ok(&generate(s(&problem), s(&full), &[]));
    let basis = Array2::from_shape_fn((D_M, 3), |(j, c)| ((j * (c + 2)) as f64 * 0.05).sin());
    let basis_path = dir.path().join("V.npy");
    write_npy(&basis_path, &basis).unwrap();
    ok(&generate(
        s(&problem),
        s(&projected),
        &["--jacobian", "projected", "--basis", s(&basis_path)],
    ));
    let (full, projected) = (
        load(std::slice::from_ref(&full)).unwrap(),
        load(&[projected]).unwrap(),
    );
    assert_eq!(full.q.dim(), (12, 8));
    let row = full.m.row(5).to_vec();
    assert_eq!(full.q.row(5).to_vec(), model.evaluate(&row).unwrap());
    let (jf, jp) = (full.jacobian.unwrap(), projected.jacobian.unwrap());
    assert_eq!(jf.shape(), &[12, 8, D_M]);
    assert_eq!(jp.shape(), &[12, 8, 3]);
    for k in 0..12 {
        let jk = jf
            .index_axis(ndarray::Axis(0), k)
            .mapv(f64::from)
            .dot(&basis);
        let pk = jp.index_axis(ndarray::Axis(0), k).mapv(f64::from);
        let err = (&jk - &pk).mapv(f64::abs).fold(0.0, |a: f64, &b| a.max(b));
        assert!(err < 1e-5, "sample {k}: J V differs by {err}");
    }

    // solve, bases and a DINO on those data, then delayed acceptance against the exact model
    let jac = dir.path().join("J.npy");
    ok(&[
        "solve",
        "--problem",
        s(&problem),
        "--sample",
        "1",
        "--jacobian",
        s(&jac),
        "--out",
        s(&dir.path().join("solve.json")),
    ]);
    let j: Array2<f64> = ndarray_npy::read_npy(&jac).unwrap();
    assert_eq!(j.dim(), (8, D_M));
    let (bases, dino_dir) = (dir.path().join("as"), dir.path().join("dino"));
    let full_dir = dir.path().join("full");
    ok(&[
        "bases",
        "--problem",
        s(&problem),
        "--kind",
        "active-subspace",
        "--rank",
        "4",
        "--data",
        s(&full_dir),
        "--out",
        s(&bases),
    ]);
    ok(&[
        "train",
        "--problem",
        s(&problem),
        "--data",
        s(&full_dir),
        "--basis",
        s(&bases),
        "--epochs",
        "20",
        "--out",
        s(&dino_dir),
    ]);
    let da = dir.path().join("da");
    ok(&[
        "infer",
        "--problem",
        s(&problem),
        "--surrogate",
        s(&dino_dir),
        "--kernel",
        "da",
        "--samples",
        "40",
        "--burn-in",
        "10",
        "--out",
        s(&da),
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(da.join("report.json")).unwrap()).unwrap();
    assert!(
        report["mcmc"].is_object(),
        "a delayed-acceptance chain against the external model: {report}"
    );

    // MAP on synthetic data from the external model
    let out = dir.path().join("map");
    ok(&[
        "infer",
        "--problem",
        s(&problem),
        "--pde",
        "--method",
        "map",
        "--out",
        s(&out),
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let chi2 = report["map_fit"]["chi2_per_datum"].as_f64().unwrap();
    assert!(chi2 < 3.0, "the MAP point fits the data: χ²/datum = {chi2}");
    let residuals = std::fs::read_to_string(out.join("residuals.csv")).unwrap();
    assert!(residuals.starts_with("output,data,q,residual"));
    assert_eq!(residuals.lines().count(), 9, "a header and 8 outputs");
}

#[test]
fn an_evaluate_only_model_gives_l2_data_and_says_why_there_are_no_derivatives() {
    let port = free_port();
    let _server = python_model(port, D_M, &["--evaluate-only"]);
    let dir = tempfile::tempdir().unwrap();
    let problem = problem_file(dir.path(), &[url(port)], "");
    let out = dir.path().join("l2");
    ok(&generate(s(&problem), s(&out), &["--jacobian", "none"]));
    assert_eq!(load(&[out]).unwrap().q.dim(), (12, 8));
    fails(
        &generate(s(&problem), s(&dir.path().join("h1")), &[]),
        &["`forward`", &url(port), "Evaluate only", "--jacobian none"],
    );
}

#[test]
fn a_wrong_input_size_or_no_server_is_a_clear_error_not_a_hang() {
    let port = free_port();
    let _server = python_model(port, 100, &[]);
    let dir = tempfile::tempdir().unwrap();
    let problem = problem_file(dir.path(), &[url(port)], "");
    let out = dir.path().join("x");
    fails(
        &generate(s(&problem), s(&out), &[]),
        &["pde.url", "169", "input size 100"],
    );
    // a full noise covariance needs d_Q, which only the server knows
    let text = std::fs::read_to_string(&problem)
        .unwrap()
        .replace("relative = 0.01", "covariance = \"C.npy\"");
    let with_covariance = dir.path().join("covariance.toml");
    std::fs::write(&with_covariance, text).unwrap();
    fails(
        &generate(s(&with_covariance), s(&out), &[]),
        &["noise.covariance", "external"],
    );
    let nobody = url(free_port());
    let problem = problem_file(dir.path(), std::slice::from_ref(&nobody), "retries = 1");
    let start = std::time::Instant::now();
    fails(
        &generate(s(&problem), s(&out), &[]),
        &["UM-Bridge model `forward`", &nobody, "after 2 tries"],
    );
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_server_that_dies_mid_generate_is_named_and_the_same_command_resumes_to_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let problem = problem_file(dir.path(), &[url(port)], "retries = 1\ntimeout_s = 10");
    let out = dir.path().join("data");
    let args = generate(
        s(&problem),
        s(&out),
        &["--jacobian", "none", "--threads", "1"],
    );
    {
        // 10 Evaluate requests answered: chunks 0..4 and 4..8 are written, then it dies
        let _dying = python_model(port, D_M, &["--exit-after", "10"]);
        fails(
            &args,
            &[
                "UM-Bridge model `forward`",
                &url(port),
                "rerun the same command",
            ],
        );
    }
    let chunks_kept = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("q")
        })
        .count();
    assert!(
        chunks_kept >= 2,
        "the chunks done before the failure are kept"
    );
    let _back = python_model(port, D_M, &[]);
    ok(&args);
    let fresh = dir.path().join("fresh");
    ok(&generate(s(&problem), s(&fresh), &["--jacobian", "none"]));
    let (resumed, fresh) = (load(&[out]).unwrap(), load(&[fresh]).unwrap());
    assert_eq!(resumed.m, fresh.m);
    assert_eq!(resumed.q, fresh.q);
    assert_eq!(resumed.samples, (0..12).collect::<Vec<_>>());
}
