//! Meshes from Gmsh files and observed data through the pipeline: the reader on files Gmsh
//! wrote (MSH 2.2/4.1, ASCII/binary), the structured square written as `.msh` reproducing the
//! structured path bitwise, a Gmsh-made square agreeing with the structured mesh to
//! discretization error, derivatives on a mesh with a hole, a MAP fitting CSV data to the noise
//! level, and bad meshes and data files refused with exit code 2.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use dino::fem::mesh_file::{read_mesh, write_msh22};
use dino::fem::Mesh;
use dino::problem::{ObservedData, Problem};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The shipped Poisson problem file with its `[mesh]` section replaced by `mesh`, and any
/// other replacements, written into `dir`.
fn poisson_with(dir: &Path, mesh: &str, replace: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(repo("problems/poisson.toml")).unwrap();
    text = text.replace(
        "n = 64            # cells per side: d_M = (n+1)² = 4225",
        mesh,
    );
    for (a, b) in replace {
        assert!(text.contains(a), "{a}");
        text = text.replace(a, b);
    }
    let path = dir.join("problem.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn gmsh_files_in_every_format_read_to_the_same_mesh() {
    let (ascii, _) = read_mesh(&repo("problems/meshes/square.msh")).unwrap();
    for f in ["square_v22_bin.msh", "square_v41_bin.msh"] {
        let (m, _) = read_mesh(&repo(&format!("problems/meshes/{f}"))).unwrap();
        // ASCII holds 16 significant digits, binary the exact doubles
        assert_eq!(m.num_vertices(), ascii.num_vertices(), "{f}");
        let worst = m
            .vertices()
            .iter()
            .zip(ascii.vertices())
            .map(|(a, b)| (a[0] - b[0]).abs().max((a[1] - b[1]).abs()))
            .fold(0.0, f64::max);
        assert!(worst < 1e-15, "{f}: coordinates differ by {worst}");
        assert_eq!(m.triangles(), ascii.triangles(), "{f}");
        assert_eq!(m.boundary_edges(), ascii.boundary_edges(), "{f}");
    }
    let mut names = ascii.boundary_names();
    names.sort();
    assert_eq!(names, ["bottom", "left", "right", "top"]);
    assert_eq!(ascii.structured_size(), None);
    // the triangles cover the unit square: areas sum to 1
    let area: f64 = ascii.geometry().iter().map(|g| g.area).sum();
    assert!((area - 1.0).abs() < 1e-12, "{area}");
    let (hole, _) = read_mesh(&repo("problems/meshes/square_hole.msh")).unwrap();
    assert!(hole.boundary_names().contains(&"hole"));
    let area: f64 = hole.geometry().iter().map(|g| g.area).sum();
    let exact = 1.0 - std::f64::consts::PI * 0.15f64.powi(2);
    assert!((area - exact).abs() < 2e-3, "{area} vs {exact}");
    assert!(
        hole.locate(0.5, 0.7).is_none(),
        "the hole's centre is outside"
    );
    assert!(hole.locate(0.5, 0.3).is_some());
}

#[test]
fn the_structured_square_written_as_msh_reproduces_the_structured_path_bitwise() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sq.msh"),
        write_msh22(&Mesh::unit_square(16)),
    )
    .unwrap();
    let file = Problem::load(poisson_with(dir.path(), "file = \"sq.msh\"", &[])).unwrap();
    let structured = poisson(16);
    assert_eq!(file.mesh_ref().structured_size(), Some(16));
    let (a, b) = (prior_sample(&file, 3), prior_sample(&structured, 3));
    assert_eq!(a, b, "prior samples");
    let (fa, fb) = (file.model().unwrap(), structured.model().unwrap());
    let (la, lb) = (fa.linearize(&a).unwrap(), fb.linearize(&b).unwrap());
    assert_eq!(la.output(), lb.output(), "q");
    let v = prior_sample(&file, 4);
    assert_eq!(la.jvp(&v), lb.jvp(&v), "J v");
    let w: Vec<f64> = (0..la.output().len()).map(|k| (k as f64).sin()).collect();
    assert_eq!(la.vjp(&w), lb.vjp(&w), "Jᵀ w");
}

/// q at a smooth m(x, y) = sin(πx) cos(πy) on `problem`'s mesh.
fn q_smooth(problem: &Problem) -> Vec<f64> {
    let m: Vec<f64> = problem
        .mesh_ref()
        .vertices()
        .iter()
        .map(|p| (std::f64::consts::PI * p[0]).sin() * (std::f64::consts::PI * p[1]).cos())
        .collect();
    problem.model().unwrap().evaluate(&m).unwrap()
}

#[test]
fn a_gmsh_square_agrees_with_the_structured_mesh_within_discretization_error() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = format!(
        "file = \"{}\"",
        repo("problems/meshes/square.msh").display()
    );
    let gmsh = Problem::load(poisson_with(dir.path(), &mesh, &[])).unwrap();
    let reference = q_smooth(&poisson(192));
    let err = |q: &[f64]| {
        let d: Vec<f64> = q.iter().zip(&reference).map(|(a, b)| a - b).collect();
        norm(&d) / norm(&reference)
    };
    // h = 1/24 unstructured vs the structured meshes around it
    let (e_gmsh, e24, e12) = (
        err(&q_smooth(&gmsh)),
        err(&q_smooth(&poisson(24))),
        err(&q_smooth(&poisson(12))),
    );
    assert!(e_gmsh < 1e-2, "gmsh square: relative error {e_gmsh:.2e}");
    assert!(
        e_gmsh < e12 && e_gmsh < 3.0 * e24,
        "gmsh {e_gmsh:.2e}, structured 24: {e24:.2e}, 12: {e12:.2e}"
    );
}

fn hole_problem() -> Problem {
    Problem::load(repo("problems/poisson_hole.toml")).unwrap()
}

#[test]
fn derivatives_on_a_mesh_with_a_hole_pass_taylor_tests() {
    use dino::misfit::{GaussianMisfit, Misfit, NoiseCovariance};
    use dino::taylor::TaylorTest;
    let problem = hole_problem();
    let model = problem.model().unwrap();
    let (m, v) = (prior_sample(&problem, 1), prior_sample(&problem, 2));
    let lin = model.linearize(&m).unwrap();
    let jv = lin.jvp(&v);
    TaylorTest::run(
        |e| model.evaluate(&axpy(&m, e, &v)).unwrap(),
        lin.output(),
        &jv,
        0.5,
        6,
    )
    .assert_second_order("q on the hole mesh", 0.1);
    let w: Vec<f64> = (0..jv.len()).map(|k| (0.3 * k as f64).cos()).collect();
    let (a, b) = (dot(&w, &jv), dot(&lin.vjp(&w), &v));
    assert!((a - b).abs() <= 1e-10 * a.abs().max(b.abs()), "{a} vs {b}");
    // misfit with a correlated Γ_ij = σ² exp(−|x_i − x_j| / 0.2) + nugget
    let points = problem.observation_points();
    let n = points.len();
    let gamma = ndarray::Array2::from_shape_fn((n, n), |(i, j)| {
        let d =
            ((points[i][0] - points[j][0]).powi(2) + (points[i][1] - points[j][1]).powi(2)).sqrt();
        1e-4 * ((-d / 0.2).exp() + if i == j { 0.05 } else { 0.0 })
    });
    let data = problem.observed().unwrap().values.clone();
    let misfit = GaussianMisfit::with_noise(data, NoiseCovariance::dense(gamma).unwrap()).unwrap();
    let g = misfit.gradient(lin.as_ref());
    TaylorTest::run_scalar(
        |e| misfit.cost(&model.evaluate(&axpy(&m, e, &v)).unwrap()),
        misfit.cost(lin.output()),
        dot(&g, &v),
        0.5,
        6,
    )
    .assert_second_order("misfit gradient, correlated noise, hole mesh", 0.1);
}

#[test]
fn a_map_on_csv_data_fits_it_to_the_noise_level() {
    // 150 measurements of the truth (prior sample 5) on the hole mesh, σ = 1% of max |u|
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let template = hole_problem();
    let mut points = vec![];
    for i in 0..15 {
        for j in 0..10 {
            let p = [0.05 + 0.9 * i as f64 / 14.0, 0.05 + 0.9 * j as f64 / 9.0];
            if template.mesh_ref().locate(p[0], p[1]).is_some() {
                points.push(p);
            }
        }
    }
    let placeholder = vec![0.0; points.len()];
    let csv = d.join("wells.csv");
    ObservedData::write_csv(&csv, &points, &placeholder, Some(&vec![1.0; points.len()])).unwrap();
    let mut text = std::fs::read_to_string(repo("problems/poisson_hole.toml")).unwrap();
    text = text
        .replace(
            "meshes/square_hole.msh",
            &repo("problems/meshes/square_hole.msh")
                .display()
                .to_string(),
        )
        .replace("data/poisson_hole_wells.csv", "wells.csv");
    let toml = d.join("p.toml");
    std::fs::write(&toml, &text).unwrap();
    let problem = Problem::load(&toml).unwrap();
    let q = problem
        .model()
        .unwrap()
        .evaluate(&prior_sample(&problem, 5))
        .unwrap();
    let sigma = 0.01 * q.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let mut rng = dino::rng::stream(9, dino::rng::Purpose::Noise, 0);
    let values: Vec<f64> = q
        .iter()
        .map(|v| v + sigma * rand::Rng::sample::<f64, _>(&mut rng, rand_distr::StandardNormal))
        .collect();
    ObservedData::write_csv(&csv, &points, &values, Some(&vec![sigma; points.len()])).unwrap();
    let out = d.join("map");
    ok(&[
        "infer",
        "--problem",
        toml.to_str().unwrap(),
        "--pde",
        "--method",
        "map",
        "--out",
        out.to_str().unwrap(),
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let chi2 = report["map_fit"]["chi2_per_datum"].as_f64().unwrap();
    assert!(
        (0.5..1.3).contains(&chi2),
        "χ²/datum {chi2} with {} data",
        points.len()
    );
    assert_eq!(report["data_source"]["kind"], "observed");
    assert!(report["map"]["relative_error_to_truth"].is_null());
    for f in [
        "map.npy",
        "residuals.csv",
        "sensors.svg",
        "map.svg",
        "fields.vtu",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    assert!(!out.join("true.svg").exists());
    let csv_out = std::fs::read_to_string(out.join("residuals.csv")).unwrap();
    assert_eq!(csv_out.lines().count(), points.len() + 1);
    let svg = std::fs::read_to_string(out.join("sensors.svg")).unwrap();
    assert_eq!(svg.matches("<circle").count(), points.len());
    let map_svg = std::fs::read_to_string(out.join("map.svg")).unwrap();
    assert_eq!(
        map_svg.matches("<polygon").count(),
        problem.mesh_ref().num_triangles()
    );
    // --data overrides the values: the noise-free q fits better
    let q_npy = d.join("q.npy");
    dino::io::npy::write_vector(&q_npy, &q).unwrap();
    let out2 = d.join("map2");
    ok(&[
        "infer",
        "--problem",
        toml.to_str().unwrap(),
        "--pde",
        "--method",
        "map",
        "--data",
        q_npy.to_str().unwrap(),
        "--out",
        out2.to_str().unwrap(),
    ]);
    let r2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out2.join("report.json")).unwrap()).unwrap();
    assert!(r2["map_fit"]["chi2_per_datum"].as_f64().unwrap() < 0.5 * chi2);
}

/// A problem file in `dir` with the hole mesh (absolute path) and `data`/`noise` lines.
fn hole_with(dir: &Path, mesh: &str, extra: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(repo("problems/poisson_hole.toml")).unwrap();
    text = text.replace("\"meshes/square_hole.msh\"", &format!("\"{mesh}\""));
    text = text.replace(
        "data/poisson_hole_wells.csv",
        &repo("problems/data/poisson_hole_wells.csv")
            .display()
            .to_string(),
    );
    for (a, b) in extra {
        assert!(text.contains(a), "{a}");
        text = text.replace(a, b);
    }
    let path = dir.join("problem.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn bad_meshes_and_data_files_exit_with_code_2_and_say_where() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hole = repo("problems/meshes/square_hole.msh")
        .display()
        .to_string();
    let solve =
        |p: &str, mentions: &[&str]| fails(&["solve", "--problem", p, "--sample", "0"], mentions);
    // mesh files
    let text = std::fs::read_to_string(&hole).unwrap();
    let write = |name: &str, body: &str| {
        let p = d.join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    };
    let truncated = write("truncated.msh", &text[..text.len() / 2]);
    solve(&hole_with(d, &truncated, &[]), &["truncated.msh"]);
    solve(
        &hole_with(d, &d.join("missing.msh").display().to_string(), &[]),
        &["missing.msh"],
    );
    let order2 = repo("problems/meshes/square_order2.msh")
        .display()
        .to_string();
    solve(
        &hole_with(d, &order2, &[]),
        &["square_order2.msh", "second-order", "3-node triangles"],
    );
    let lines_only = write(
        "lines.msh",
        "$MeshFormat\n2.2 0 8\n$EndMeshFormat\n$Nodes\n2\n1 0 0 0\n2 1 0 0\n$EndNodes\n\
         $Elements\n1\n1 1 2 1 1 1 2\n$EndElements\n",
    );
    solve(
        &hole_with(d, &lines_only, &[]),
        &["lines.msh", "no triangles"],
    );
    // a degenerate triangle (three collinear nodes) and a folded (inverted) one
    let tri = |nodes: &str, elements: &str| {
        format!(
            "$MeshFormat\n2.2 0 8\n$EndMeshFormat\n$Nodes\n4\n{nodes}$EndNodes\n\
             $Elements\n2\n{elements}$EndElements\n"
        )
    };
    let degenerate = write(
        "degenerate.msh",
        &tri(
            "1 0 0 0\n2 1 0 0\n3 2 0 0\n4 0 1 0\n",
            "1 2 2 0 1 1 2 4\n2 2 2 0 1 1 2 3\n",
        ),
    );
    solve(
        &hole_with(d, &degenerate, &[]),
        &["degenerate.msh", "degenerate"],
    );
    let inverted = write(
        "inverted.msh",
        &tri(
            "1 0 0 0\n2 1 0 0\n3 1 1 0\n4 0 1 0\n",
            "1 2 2 0 1 1 2 3\n2 2 2 0 1 1 4 3\n",
        ),
    );
    solve(&hole_with(d, &inverted, &[]), &["inverted.msh", "inverted"]);
    // unknown physical group: the message lists the groups the mesh has
    solve(
        &hole_with(d, &hole, &[("bottom = 0.0", "inlet = 0.0")]),
        &["inlet", "bottom", "top", "hole"],
    );
    // data files
    let csv = |name: &str, body: &str| {
        let p = write(name, body);
        hole_with(
            d,
            &hole,
            &[(
                &repo("problems/data/poisson_hole_wells.csv")
                    .display()
                    .to_string(),
                &p,
            )],
        )
    };
    // hole_with replaces the data path first, so pass the CSV through a second replacement
    let nan = csv("nan.csv", "x,y,value,std\n0.2,0.2,1,0.1\n0.3,0.3,nan,0.1\n");
    solve(&nan, &["nan.csv", "line 3", "value"]);
    let missing = csv("missing.csv", "x,y,std\n0.2,0.2,0.1\n");
    solve(&missing, &["missing.csv", "value"]);
    let bad_std = csv("std.csv", "x,y,value,std\n0.2,0.2,1,-0.1\n");
    solve(&bad_std, &["std.csv", "line 2", "std"]);
    let in_hole = csv("hole.csv", "x,y,value,std\n0.2,0.2,1,0.1\n0.5,0.7,1,0.1\n");
    solve(&in_hole, &["(0.5, 0.7)"]);
    let outside = csv("outside.csv", "x,y,value,std\n1.5,0.2,1,0.1\n");
    solve(&outside, &["(1.5, 0.2)"]);
    // a covariance that is not SPD, and data of the wrong length
    let two = write("two.csv", "x,y,value\n0.2,0.2,1\n0.3,0.3,1\n");
    let c = d.join("c.npy");
    dino::io::npy::write_matrix(&c, &ndarray::array![[1.0, 2.0], [2.0, 1.0]]).unwrap();
    let spd = hole_with(
        d,
        &hole,
        &[
            (
                &repo("problems/data/poisson_hole_wells.csv")
                    .display()
                    .to_string(),
                &two,
            ),
            (
                "# [noise]: none needed",
                &format!("[noise]\ncovariance = \"{}\"\n#", c.display()),
            ),
        ],
    );
    solve(&spd, &["covariance", "positive definite"]);
    let problem = hole_with(d, &hole, &[]);
    let short = d.join("short.npy");
    dino::io::npy::write_vector(&short, &[1.0, 2.0]).unwrap();
    fails(
        &[
            "infer",
            "--problem",
            &problem,
            "--pde",
            "--method",
            "map",
            "--data",
            short.to_str().unwrap(),
            "--out",
            d.join("o").to_str().unwrap(),
        ],
        &["short.npy", "40"],
    );
}

/// The shipped surrogate serves the Poisson problem under any noise model and with measured
/// values (`--data`), and refuses the problem observed at other points.
#[test]
fn the_shipped_surrogate_runs_on_observed_data_and_refuses_other_points() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let surrogate = repo("surrogates/poisson-dipnet").display().to_string();
    let fixed = poisson_with(
        d,
        "n = 64",
        &[(
            "relative = 0.01   # σ = 0.01 · max |q(m_true)|",
            "std = 0.005",
        )],
    );
    let shipped = Problem::load(repo("problems/poisson.toml")).unwrap();
    assert_eq!(Problem::load(&fixed).unwrap().hash(), shipped.hash());
    let q = shipped
        .model()
        .unwrap()
        .evaluate(&prior_sample(&shipped, 2))
        .unwrap();
    let values = d.join("values.npy");
    dino::io::npy::write_vector(&values, &q).unwrap();
    let out = d.join("out");
    let args = |problem: &Path| {
        vec![
            "infer".to_string(),
            "--problem".into(),
            problem.display().to_string(),
            "--surrogate".into(),
            surrogate.clone(),
            "--method".into(),
            "laplace".into(),
            "--rank".into(),
            "10".into(),
            "--data".into(),
            values.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ]
    };
    let a = args(&fixed);
    ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["noise_std"], 0.005);
    assert!(report["data_source"]["file"]
        .as_str()
        .unwrap()
        .ends_with("values.npy"));
    assert!(out.join("laplace_variance.npy").is_file());
    // the same problem observed at 50 other points
    let points: Vec<[f64; 2]> = (0..50).map(|k| [0.1 + 0.016 * k as f64, 0.3]).collect();
    let csv = d.join("other.csv");
    ObservedData::write_csv(&csv, &points, &q, None).unwrap();
    let other = poisson_with(
        d,
        "n = 64",
        &[
            ("relative = 0.01   # σ = 0.01 · max |q(m_true)|", "std = 0.005"),
            (
                "grid_x = { start = 0.1, stop = 0.9, count = 10 }\ngrid_y = { start = 0.1, stop = 0.5, count = 5 }",
                "data = \"other.csv\"",
            ),
        ],
    );
    let mut a = args(&other);
    a.truncate(a.len() - 4);
    a.extend(["--out".into(), out.display().to_string()]);
    fails(
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        &["model.json", "problem.hash"],
    );
}

/// Every command runs on a Gmsh mesh: generate, bases, train, eval, compare on the hole
/// problem; reaction–diffusion solves and OUU optimizes on the Gmsh square.
#[test]
fn the_whole_pipeline_runs_on_gmsh_meshes() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).display().to_string();
    let p = hole_with(
        dir.path(),
        &repo("problems/meshes/square_hole.msh")
            .display()
            .to_string(),
        &[],
    );
    ok(&[
        "infer",
        "--problem",
        &p,
        "--pde",
        "--method",
        "laplace",
        "--rank",
        "20",
        "--out",
        &d("lap"),
    ]);
    ok(&[
        "generate",
        "--problem",
        &p,
        "--laplace",
        &d("lap/laplace"),
        "--samples",
        "48",
        "--out",
        &d("train"),
    ]);
    ok(&[
        "generate",
        "--problem",
        &p,
        "--samples",
        "8",
        "--seed",
        "1",
        "--jacobian",
        "none",
        "--out",
        &d("test"),
    ]);
    ok(&[
        "bases",
        "--problem",
        &p,
        "--kind",
        "active-subspace",
        "--data",
        &d("train"),
        "--rank",
        "12",
        "--out",
        &d("as"),
    ]);
    ok(&[
        "train",
        "--problem",
        &p,
        "--data",
        &d("train"),
        "--basis",
        &d("as"),
        "--loss",
        "h1",
        "--epochs",
        "20",
        "--out",
        &d("dino"),
    ]);
    ok(&[
        "eval",
        "--surrogate",
        &d("dino"),
        "--data",
        &d("test"),
        "--problem",
        &p,
        "--json",
        &d("eval.json"),
    ]);
    ok(&[
        "compare",
        "--problem",
        &p,
        "--surrogate",
        &d("dino"),
        "--samples",
        "40",
        "--burn-in",
        "10",
        "--rank",
        "10",
        "--out",
        &d("cmp"),
    ]);
    let vtu = std::fs::read_to_string(d("cmp/pde/fields.vtu")).unwrap();
    assert!(
        vtu.contains("NumberOfPoints=\"717\""),
        "the hole mesh's vertices"
    );
    let square = repo("problems/meshes/square.msh").display().to_string();
    for (file, replace) in [
        ("reaction_diffusion.toml", "n = 64"),
        ("ouu_semilinear.toml", "n = 64"),
    ] {
        let text = std::fs::read_to_string(repo(&format!("problems/{file}"))).unwrap();
        let line = text.lines().find(|l| l.starts_with(replace)).unwrap();
        let path = dir.path().join(file);
        std::fs::write(&path, text.replace(line, &format!("file = \"{square}\""))).unwrap();
        let path = path.display().to_string();
        if file.starts_with("ouu") {
            ok(&[
                "ouu",
                "--problem",
                &path,
                "--pde",
                "--samples",
                "4",
                "--max-iter",
                "3",
                "--fresh",
                "4",
                "--out",
                &d("ouu"),
            ]);
            assert!(std::fs::read_to_string(d("ouu/control.svg"))
                .unwrap()
                .contains("<polygon"));
        } else {
            ok(&[
                "solve",
                "--problem",
                &path,
                "--sample",
                "0",
                "--vtk",
                &d("rd.vtu"),
            ]);
        }
    }
}
