//! End-to-end tests of `dino solve`, including every bad-input case: exit code 2 and one message
//! naming the file and the field, never a panic.

mod common;

use common::{dino, fails};
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2};
use ndarray_npy::{read_npy, write_npy};

const PROBLEM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/problems/poisson.toml");

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The shipped problem file with one line replaced.
fn edited_problem(dir: &Path, name: &str, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(PROBLEM).unwrap();
    assert!(text.contains(from), "problem file has no {from:?}");
    let path = dir.join(name);
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    path
}

#[test]
fn solve_writes_q_jv_jacobian_and_vtu() {
    let dir = tempfile::tempdir().unwrap();
    let v: Vec<f64> = (0..81).map(|i| (i as f64 * 0.1).sin()).collect();
    let v_path = dir.path().join("v.npy");
    write_npy(&v_path, &Array1::from(v.clone())).unwrap();
    let (json, jac, vtu) = (
        dir.path().join("r.json"),
        dir.path().join("J.npy"),
        dir.path().join("s.vtu"),
    );
    let out = dino(&[
        "solve",
        "--problem",
        PROBLEM,
        "--mesh",
        "8",
        "--sample",
        "3",
        "--direction",
        path_str(&v_path),
        "--jacobian",
        path_str(&jac),
        "--out",
        path_str(&json),
        "--vtk",
        path_str(&vtu),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let q: Vec<f64> = serde_json::from_value(report["q"].clone()).unwrap();
    let jv: Vec<f64> = serde_json::from_value(report["jv"].clone()).unwrap();
    assert_eq!(q.len(), 50);
    assert_eq!(jv.len(), 50);
    for key in ["assembly", "factorization", "solve", "jacobian", "total"] {
        assert!(
            report["timings_s"][key].as_f64().unwrap() >= 0.0,
            "timings_s.{key}"
        );
    }
    // u ∈ [0, 1] by the maximum principle (boundary values 0 and 1, no source)
    assert!(q.iter().all(|&x| (0.0..=1.0).contains(&x)));
    let j: Array2<f64> = read_npy(&jac).unwrap();
    assert_eq!(j.shape(), &[50, 81]);
    let jv_from_j = j.dot(&Array1::from(v));
    for (a, b) in jv.iter().zip(jv_from_j.iter()) {
        assert!((a - b).abs() < 1e-10 * (1.0 + b.abs()));
    }
    let vtu_text = std::fs::read_to_string(&vtu).unwrap();
    assert!(vtu_text.contains(r#"Name="state""#) && vtu_text.contains(r#"Name="parameter""#));
    assert!(vtu_text.contains(r#"NumberOfPoints="81" NumberOfCells="128""#));
}

#[test]
fn solve_prints_json_to_stdout_and_same_seed_gives_same_q() {
    let run = || {
        let out = dino(&[
            "solve",
            "--problem",
            PROBLEM,
            "--mesh",
            "8",
            "--sample",
            "5",
        ]);
        assert!(out.status.success());
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        r["q"].clone()
    };
    assert_eq!(run(), run());
}

#[test]
fn solve_with_a_parameter_file() {
    let dir = tempfile::tempdir().unwrap();
    let m_path = dir.path().join("m.npy");
    write_npy(&m_path, &Array1::<f64>::zeros(81)).unwrap();
    let out = dino(&[
        "solve",
        "--problem",
        PROBLEM,
        "--mesh",
        "8",
        "--param",
        path_str(&m_path),
    ]);
    assert!(out.status.success());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // with m = 0 the solution is u = y exactly (P1 reproduces it): q at the grid's y values
    let q: Vec<f64> = serde_json::from_value(r["q"].clone()).unwrap();
    for (k, qk) in q.iter().enumerate() {
        let y = 0.1 + 0.1 * (k / 10) as f64;
        assert!((qk - y).abs() < 1e-12, "q[{k}] = {qk}, expected {y}");
    }
}

#[test]
fn bad_problem_files_name_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fails(
        &[
            "solve",
            "--problem",
            "no/such/problem.toml",
            "--sample",
            "1",
        ],
        &["no/such/problem.toml"],
    );
    let malformed = d.join("malformed.toml");
    std::fs::write(&malformed, "[mesh\nn = 3\n").unwrap();
    fails(
        &["solve", "--problem", path_str(&malformed), "--sample", "1"],
        &["malformed.toml", "TOML"],
    );
    let unknown = edited_problem(d, "unknown.toml", "[mesh]", "[mesh]\nresolution = 3");
    fails(
        &["solve", "--problem", path_str(&unknown), "--sample", "1"],
        &["unknown.toml", "resolution"],
    );
    let wrong_type = edited_problem(d, "type.toml", "n = 64", "n = \"big\"");
    fails(
        &["solve", "--problem", path_str(&wrong_type), "--sample", "1"],
        &["type.toml", "invalid type"],
    );
    let gamma = edited_problem(d, "gamma.toml", "gamma = 0.1", "gamma = -0.1");
    fails(
        &["solve", "--problem", path_str(&gamma), "--sample", "1"],
        &["gamma.toml", "prior.gamma", "positive"],
    );
    let delta = edited_problem(d, "delta.toml", "delta = 0.5", "delta = 0.0");
    fails(
        &["solve", "--problem", path_str(&delta), "--sample", "1"],
        &["delta.toml", "prior.delta", "positive"],
    );
    let outside = edited_problem(d, "outside.toml", "stop = 0.9", "stop = 1.5");
    fails(
        &["solve", "--problem", path_str(&outside), "--sample", "1"],
        &["outside.toml", "observations.grid_x.stop"],
    );
    let points = edited_problem(
        d,
        "points.toml",
        "grid_x = { start = 0.1, stop = 0.9, count = 10 }\ngrid_y = { start = 0.1, stop = 0.5, count = 5 }",
        "points = [[0.5, 0.5], [0.2, -0.3]]",
    );
    fails(
        &["solve", "--problem", path_str(&points), "--sample", "1"],
        &["points.toml", "observations.points[1]"],
    );
    let no_model = edited_problem(d, "model.toml", "model = \"poisson\"", "model = \"heat\"");
    fails(
        &["solve", "--problem", path_str(&no_model), "--sample", "1"],
        &["model.toml", "heat"],
    );
    fails(
        &[
            "solve",
            "--problem",
            PROBLEM,
            "--mesh",
            "0",
            "--sample",
            "1",
        ],
        &["--mesh"],
    );
}

#[test]
fn bad_parameter_files_name_the_file_and_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let short = d.join("short.npy");
    write_npy(&short, &Array1::<f64>::zeros(10)).unwrap();
    fails(
        &[
            "solve",
            "--problem",
            PROBLEM,
            "--mesh",
            "8",
            "--param",
            path_str(&short),
        ],
        &["short.npy", "--param", "length 81"],
    );
    let f32_path = d.join("f32.npy");
    write_npy(&f32_path, &Array1::<f32>::zeros(81)).unwrap();
    fails(
        &[
            "solve",
            "--problem",
            PROBLEM,
            "--mesh",
            "8",
            "--param",
            path_str(&f32_path),
        ],
        &["f32.npy", "float64"],
    );
    let matrix = d.join("matrix.npy");
    write_npy(&matrix, &Array2::<f64>::zeros((9, 9))).unwrap();
    fails(
        &[
            "solve",
            "--problem",
            PROBLEM,
            "--mesh",
            "8",
            "--param",
            path_str(&matrix),
        ],
        &["matrix.npy", "1-D"],
    );
    for (name, bad) in [("nan.npy", f64::NAN), ("inf.npy", f64::INFINITY)] {
        let mut m = Array1::<f64>::zeros(81);
        m[4] = bad;
        let p = d.join(name);
        write_npy(&p, &m).unwrap();
        fails(
            &[
                "solve",
                "--problem",
                PROBLEM,
                "--mesh",
                "8",
                "--param",
                path_str(&p),
            ],
            &[name, "finite", "index 4"],
        );
    }
    let garbage = d.join("garbage.npy");
    std::fs::write(&garbage, b"not an npy file").unwrap();
    fails(
        &[
            "solve",
            "--problem",
            PROBLEM,
            "--mesh",
            "8",
            "--param",
            path_str(&garbage),
        ],
        &["garbage.npy", "--param"],
    );
    fails(
        &[
            "solve",
            "--problem",
            PROBLEM,
            "--mesh",
            "8",
            "--param",
            "missing.npy",
        ],
        &["missing.npy"],
    );
    fails(
        &[
            "solve",
            "--problem",
            PROBLEM,
            "--mesh",
            "8",
            "--sample",
            "1",
            "--direction",
            path_str(&short),
        ],
        &["short.npy", "--direction"],
    );
    // neither --param nor --sample: clap's usage error, also exit code 2
    fails(&["solve", "--problem", PROBLEM], &["--param", "--sample"]);
}

const REACTION_DIFFUSION: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/problems/reaction_diffusion.toml"
);

#[test]
fn reaction_diffusion_reports_newton_history_and_rejects_bad_input() {
    let out = dino(&[
        "solve",
        "--problem",
        REACTION_DIFFUSION,
        "--mesh",
        "8",
        "--sample",
        "2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["model"], "reaction_diffusion");
    assert!(r["newton_iterations"].as_u64().unwrap() >= 2);

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // a parameter for which Newton fails: the error names the model and the residual
    for (name, value) in [("huge.npy", 800.0), ("tiny.npy", -60.0)] {
        let p = d.join(name);
        write_npy(&p, &Array1::<f64>::from_elem(81, value)).unwrap();
        fails(
            &[
                "solve",
                "--problem",
                REACTION_DIFFUSION,
                "--mesh",
                "8",
                "--param",
                path_str(&p),
            ],
            &["reaction_diffusion", "residual"],
        );
    }
    let text = std::fs::read_to_string(REACTION_DIFFUSION).unwrap();
    for (file, from, to, field) in [
        (
            "source.toml",
            "start = 0.25, stop = 0.75",
            "start = 0.25, stop = 1.75",
            "pde.sources.grid_x.stop",
        ),
        (
            "reaction.toml",
            "reaction = 1.0",
            "reaction = -1.0",
            "pde.reaction",
        ),
        (
            "width.toml",
            "width = 0.1",
            "width = 0.0",
            "pde.sources.width",
        ),
        (
            "strengths.toml",
            "checkerboard = 0.25",
            "strengths = [1.0, 2.0]",
            "pde.sources.strengths",
        ),
    ] {
        let p = d.join(file);
        std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
        fails(
            &["solve", "--problem", path_str(&p), "--sample", "1"],
            &[file, field],
        );
    }
}

const CONVECTION: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/problems/convection_reaction_diffusion.toml"
);

#[test]
fn convection_writes_velocity_and_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // a copy of the problem in a temporary folder keeps its velocity cache there
    let problem = d.join("crd.toml");
    std::fs::copy(CONVECTION, &problem).unwrap();
    let vtu = d.join("crd.vtu");
    let out = dino(&[
        "solve",
        "--problem",
        path_str(&problem),
        "--mesh",
        "8",
        "--sample",
        "1",
        "--vtk",
        path_str(&vtu),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["model"], "convection_reaction_diffusion");
    assert!(std::fs::read_to_string(&vtu)
        .unwrap()
        .contains(r#"Name="velocity" NumberOfComponents="3""#));
    assert_eq!(
        std::fs::read_dir(d.join(".dino-cache")).unwrap().count(),
        1,
        "velocity cached once"
    );
    let text = std::fs::read_to_string(CONVECTION).unwrap();
    for (file, from, to, field) in [
        (
            "kappa.toml",
            "diffusivity = 0.01",
            "diffusivity = -0.01",
            "pde.diffusivity",
        ),
        (
            "reynolds.toml",
            "reynolds = 100.0",
            "reynolds = -100.0",
            "pde.velocity.reynolds",
        ),
        (
            "center.toml",
            "center = [0.7, 0.7]",
            "center = [1.7, 0.7]",
            "pde.source.center",
        ),
    ] {
        let p = d.join(file);
        std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
        fails(
            &["solve", "--problem", path_str(&p), "--sample", "1"],
            &[file, field],
        );
    }
}

#[test]
fn train_warns_when_it_stops_while_the_validation_loss_still_falls_and_the_printed_command_continues(
) {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let out = dino(args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{args:?}: {stderr}");
        stderr
    };
    let (data, basis, model) = (d("data"), d("as"), d("m"));
    run(&[
        "generate",
        "--problem",
        PROBLEM,
        "--mesh",
        "8",
        "--samples",
        "48",
        "--out",
        &data,
    ]);
    run(&[
        "bases",
        "--problem",
        PROBLEM,
        "--mesh",
        "8",
        "--kind",
        "active-subspace",
        "--rank",
        "8",
        "--data",
        &data,
        "--out",
        &basis,
    ]);
    let train = |lr: &str, out: &str| {
        run(&[
            "train",
            "--problem",
            PROBLEM,
            "--mesh",
            "8",
            "--data",
            &data,
            "--basis",
            &basis,
            "--epochs",
            "10",
            "--lr",
            lr,
            "--lr-final",
            lr,
            "--out",
            out,
        ])
    };
    // a tiny learning rate: still falling after 10 epochs
    let stderr = train("1e-4", &model);
    assert!(stderr.contains("still falling"), "{stderr}");
    let command = stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("dino train"))
        .unwrap_or_else(|| panic!("no command to continue: {stderr}"));
    assert!(command.contains(&format!("--init {model}")), "{command}");
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    run(&args);
    assert!(Path::new(&format!("{model}-continued/model.json")).exists());
    // the defaults reach a plateau on these data: no warning
    let stderr = train("1e-3", &d("plateau"));
    assert!(!stderr.contains("still falling"), "{stderr}");
}
