//! The whole pipeline through the CLI on a small Poisson problem (8 × 8 mesh): generate →
//! bases → train → eval → infer (PDE and surrogate) → compare, with the bad-input cases.

mod common;

use common::*;
use std::path::Path;

/// problems/poisson.toml on an n × n mesh, written into `dir`.
/// A JSON file a command wrote (report, model, manifest), parsed.
fn read_json(path: impl AsRef<Path>) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn small_problem(dir: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/problems/poisson.toml"
    ))
    .unwrap();
    let text = text.replace("n = 64 ", &format!("n = {n} "));
    let path = dir.join(format!("poisson{n}.toml"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// `infer` saved its Laplace approximation in `inf_pde/laplace`; `generate --laplace` draws from
/// it: the leading coefficients v_iᵀR(m − m_MAP) have the variance τ/(τ + λ_i) (τ = 1: the
/// posterior's), not the prior's 1. A folder for another problem, a τ < 1, or resuming with
/// another distribution is refused.
fn laplace_folder_seeds_posterior_training_data(dir: &Path, problem: &str) {
    let d = |p: &str| dir.join(p).display().to_string();
    let gen = |extra: &[&str], out: &str| {
        let mut args = vec![
            "generate",
            "--problem",
            problem,
            "--samples",
            "200",
            "--jacobian",
            "none",
            "--out",
        ];
        let o = d(out);
        args.push(&o);
        args.extend_from_slice(extra);
        dino(&args)
    };
    let laplace_dir = d("inf_pde/laplace");
    let p = dino::problem::Problem::load(problem).unwrap();
    let prior = p.prior().unwrap();
    let lap = dino::inference::Laplace::load(
        dir.join("inf_pde/laplace").as_path(),
        &p.hash(),
        prior.dim(),
    )
    .unwrap();
    for (tau, folder) in [("1", "posterior_data"), ("4", "tempered_data")] {
        let out = gen(&["--laplace", &laplace_dir, "--temper", tau], folder);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tau: f64 = tau.parse().unwrap();
        let data = dino::data::load(&[dir.join(folder)]).unwrap();
        let n = data.len() as f64;
        for i in 0..3 {
            let var: f64 = (0..data.len())
                .map(|k| {
                    let dev: Vec<f64> = data
                        .m
                        .row(k)
                        .iter()
                        .zip(&lap.mean)
                        .map(|(a, b)| a - b)
                        .collect();
                    lap.coefficients(&prior, &dev)[i].powi(2)
                })
                .sum::<f64>()
                / n;
            // N(m_MAP, (R + H/τ)⁻¹): coefficient variance τ/(τ + λ_i)
            let expected = tau / (tau + lap.eigenvalues[i]);
            assert!(
                lap.eigenvalues[i] > 10.0,
                "an informed direction: λ = {}",
                lap.eigenvalues[i]
            );
            // the sample variance of 200 Gaussian draws is within ±30% with overwhelming probability
            assert!(
                (var / expected - 1.0).abs() < 0.3,
                "τ = {tau}, coefficient {i}: variance {var:.3e}, expected {expected:.3e}"
            );
        }
    }
    for (args, field) in [
        (
            vec!["--laplace", laplace_dir.as_str(), "--temper", "0.5"],
            "--temper",
        ),
        (vec!["--temper", "4"], "--temper"),
    ] {
        let out = gen(&args, "bad_temper");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(field), "{err}");
    }
    // given parameters (e.g. a chain's saved states): sample i is row i, and q is the PDE's there
    let drawn = dino::data::load(&[dir.join("posterior_data")]).unwrap();
    let rows = d("rows.npy");
    dino::io::npy::write_matrix(&rows, &drawn.m).unwrap();
    let out = gen(&["--parameters", &rows], "given_data");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let given = dino::data::load(&[dir.join("given_data")]).unwrap();
    assert_eq!(given.m, drawn.m);
    assert_eq!(given.q, drawn.q);
    let short = d("short.npy");
    dino::io::npy::write_matrix(&short, &drawn.m.slice(ndarray::s![..150, ..]).to_owned()).unwrap();
    let wide = d("wide.npy");
    dino::io::npy::write_matrix(
        &wide,
        &ndarray::Array2::<f64>::zeros((200, drawn.m.ncols() + 1)),
    )
    .unwrap();
    for (args, what) in [
        (vec!["--parameters", short.as_str()], "shape (150,"),
        (vec!["--parameters", wide.as_str()], "--parameters"),
        (
            vec![
                "--parameters",
                rows.as_str(),
                "--laplace",
                laplace_dir.as_str(),
            ],
            "--parameters",
        ),
    ] {
        let out = gen(&args, "bad_parameters");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(what), "{err}");
    }
    let out = gen(&["--parameters", &rows], "posterior_data");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("sampling distribution"), "{err}");
    // resuming the folder with the prior instead is refused
    let out = gen(&[], "posterior_data");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("sampling distribution"), "{err}");
    // a Laplace folder of another problem is refused, naming the field
    let json = dir.join("inf_pde/laplace/laplace.json");
    let text = std::fs::read_to_string(&json).unwrap();
    let other = dir.join("other_laplace");
    std::fs::create_dir_all(&other).unwrap();
    for f in ["mean.npy", "eigenvalues.npy", "vectors.npy"] {
        std::fs::copy(dir.join("inf_pde/laplace").join(f), other.join(f)).unwrap();
    }
    std::fs::write(
        other.join("laplace.json"),
        text.replace(&p.hash(), "0123456789abcdef"),
    )
    .unwrap();
    let out = gen(&["--laplace", &d("other_laplace")], "other_data");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("laplace.json") && err.contains("problem_hash"),
        "{err}"
    );
}

#[test]
fn train_eval_infer_and_compare_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let d = |p: &str| tmp.path().join(p).display().to_string();
    let problem = small_problem(tmp.path(), 8);
    ok(&[
        "bases",
        "--problem",
        &problem,
        "--kind",
        "active-subspace",
        "--rank",
        "16",
        "--pilot",
        "32",
        "--out",
        &d("as"),
    ]);
    ok(&[
        "generate",
        "--problem",
        &problem,
        "--samples",
        "128",
        "--jacobian",
        "projected",
        "--basis",
        &d("as/encoder.npy"),
        "--out",
        &d("train"),
    ]);
    ok(&[
        "generate",
        "--problem",
        &problem,
        "--samples",
        "32",
        "--seed",
        "1",
        "--jacobian",
        "none",
        "--out",
        &d("test"),
    ]);
    // projected data need the basis they were projected on
    fails(
        &[
            "train",
            "--problem",
            &problem,
            "--data",
            &d("train"),
            "--basis",
            &d("other"),
            "--out",
            &d("s"),
        ],
        &["basis.json"],
    );
    // `dino train` on the projected data in the active subspace, 3 layers, output rank 16
    let train_args = |width: &str, epochs: &str, extra: &[String], out: &str| -> Vec<String> {
        let mut args: Vec<String> = [
            "train",
            "--problem",
            &problem,
            "--data",
            &d("train"),
            "--basis",
            &d("as"),
            "--output-rank",
            "16",
            "--width",
            width,
            "--depth",
            "3",
            "--epochs",
            epochs,
            "--out",
            &d(out),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend_from_slice(extra);
        args
    };
    for loss in ["h1", "ms"] {
        let extra: Vec<String> = vec![
            "--batch-size".into(),
            "16".into(),
            "--lr".into(),
            "3e-3".into(),
            "--loss".into(),
            loss.into(),
            "--test-data".into(),
            d("test"),
        ];
        let args = train_args("24", "30", &extra, &format!("s_{loss}"));
        ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }
    // training continues from a model's weights; another architecture is refused
    let cont = |width: &str, out: &str| train_args(width, "3", &["--init".into(), d("s_h1")], out);
    let args = cont("24", "s_cont");
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let args = cont("32", "s_bad");
    fails(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &["architecture.mlp"],
    );
    // the study on a small grid writes its CSV, table and plots
    ok(&[
        "study",
        "--problem",
        &problem,
        "--data",
        &d("train"),
        "--test",
        &d("test"),
        "--basis",
        &d("as"),
        "--sizes",
        "32,64",
        "--losses",
        "l2,h1",
        "--archs",
        "8-8",
        "--epochs",
        "5",
        "--min-steps",
        "10",
        "--out",
        &d("study"),
    ]);
    let csv = std::fs::read_to_string(d("study/study.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 4, "{csv}");
    for f in ["study.md", "accuracy_l2.svg", "accuracy_h1.svg"] {
        assert!(tmp.path().join("study").join(f).exists(), "{f}");
    }
    let model: serde_json::Value = read_json(d("s_h1/model.json"));
    let l2 = model["test_metrics"]["l2_accuracy"].as_f64().unwrap();
    assert!(l2 > 0.8, "test L2 accuracy of a 30-epoch surrogate: {l2}");
    assert!(model["test_metrics"]["h1_accuracy"].as_f64().is_some());
    for f in [
        "training_log.json",
        "training_curve.svg",
        "weights.safetensors",
    ] {
        assert!(tmp.path().join("s_h1").join(f).exists(), "{f}");
    }
    // eval reproduces the recorded metrics
    ok(&[
        "eval",
        "--surrogate",
        &d("s_h1"),
        "--data",
        &d("test"),
        "--problem",
        &problem,
        "--json",
        &d("eval.json"),
    ]);
    let eval: serde_json::Value = read_json(d("eval.json"));
    assert!((eval["l2_accuracy"].as_f64().unwrap() - l2).abs() < 1e-12);

    let infer = |extra: &[&str], out: &str| {
        let mut args = vec![
            "infer",
            "--problem",
            &problem,
            "--samples",
            "300",
            "--burn-in",
            "50",
            "--rank",
            "10",
            "--out",
        ];
        let o = d(out);
        args.push(&o);
        args.extend_from_slice(extra);
        ok(&args);
        serde_json::from_str::<serde_json::Value>(
            &std::fs::read_to_string(tmp.path().join(out).join("report.json")).unwrap(),
        )
        .unwrap()
    };
    let pde = infer(&["--pde"], "inf_pde");
    laplace_folder_seeds_posterior_training_data(tmp.path(), &problem);
    let lbfgs = infer(
        &["--pde", "--method", "map", "--optimizer", "lbfgs"],
        "inf_lbfgs",
    );
    let (a, b) = (
        lbfgs["map"]["cost"]["total"].as_f64().unwrap(),
        pde["map"]["cost"]["total"].as_f64().unwrap(),
    );
    assert!(
        (a - b).abs() < 1e-4 * b,
        "L-BFGS MAP cost {a} vs Newton–CG {b}"
    );
    let sur = infer(&["--surrogate", &d("s_h1")], "inf_s");
    assert_eq!(pde["map"]["converged"], true);
    assert!(
        sur["mcmc"]["diagnostics"]["pde_solves"].as_u64().unwrap() > 0,
        "delayed acceptance corrects with the PDE"
    );
    for f in [
        "map.svg",
        "posterior_mean.svg",
        "posterior_variance.svg",
        "trace.svg",
        "fields.vtu",
        "eigenvalues.svg",
    ] {
        assert!(tmp.path().join("inf_s").join(f).exists(), "{f}");
    }
    // resuming a finished run reuses the chain checkpoints (same report)
    let again = infer(&["--surrogate", &d("s_h1")], "inf_s");
    assert_eq!(
        again["mcmc"]["diagnostics"]["qoi"],
        sur["mcmc"]["diagnostics"]["qoi"]
    );
    // a surrogate anchored at the PDE's linearization at the MAP: the network learns the residual,
    // the model stores q(m₀) and J(m₀), and every command uses the sum
    let anchored = |anchor: &str, out: &str| {
        let extra: Vec<String> = [
            "--batch-size",
            "16",
            "--lr",
            "3e-3",
            "--anchor",
            anchor,
            "--test-data",
            &d("test"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        train_args("24", "30", &extra, out)
    };
    let args = anchored(&d("inf_pde/laplace/mean.npy"), "s_anchor");
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let model: serde_json::Value = read_json(d("s_anchor/model.json"));
    assert_eq!(model["anchored"], true);
    let l2_anchor = model["test_metrics"]["l2_accuracy"].as_f64().unwrap();
    // (measured with the anchor: the network alone predicts only the residual)
    assert!(l2_anchor > 0.6, "anchored test L2 accuracy {l2_anchor}");
    ok(&[
        "eval",
        "--surrogate",
        &d("s_anchor"),
        "--data",
        &d("test"),
        "--json",
        &d("eval_anchor.json"),
    ]);
    let eval: serde_json::Value = read_json(d("eval_anchor.json"));
    assert!((eval["l2_accuracy"].as_f64().unwrap() - l2_anchor).abs() < 1e-12);
    let da = infer(
        &["--surrogate", &d("s_anchor"), "--kernel", "da-hmc"],
        "inf_anchor",
    );
    assert!(da["mcmc"]["diagnostics"]["pde_solves"].as_u64().unwrap() > 0);
    // an anchor of the wrong length is refused, naming the flag
    let args = anchored(&d("inf_pde/laplace/eigenvalues.npy"), "s_bad_anchor");
    fails(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &["--anchor"],
    );
    ok(&[
        "compare",
        "--problem",
        &problem,
        "--surrogate",
        &d("s_h1"),
        "--samples",
        "200",
        "--burn-in",
        "20",
        "--rank",
        "10",
        "--out",
        &d("cmp"),
    ]);
    let cmp: serde_json::Value = read_json(d("cmp/compare.json"));
    let map_diff = cmp["map_relative_difference"].as_f64().unwrap();
    assert!(map_diff.is_finite());
    assert!(tmp.path().join("cmp/compare.md").exists());
    // the geometric kernels: PDE mMALA against DINO delayed-acceptance mMALA, in the
    // surrogate's (R-orthonormal, active-subspace) input basis
    ok(&[
        "compare",
        "--problem",
        &problem,
        "--surrogate",
        &d("s_h1"),
        "--pde-kernel",
        "mmala",
        "--dino-kernel",
        "da-mmala",
        "--subspace",
        &d("s_h1"),
        "--samples",
        "100",
        "--burn-in",
        "10",
        "--rank",
        "10",
        "--out",
        &d("cmp_mmala"),
    ]);
    let cmp: serde_json::Value = read_json(d("cmp_mmala/compare.json"));
    assert_eq!(cmp["pde"]["kernel"], "mmala");
    assert_eq!(cmp["dino"]["kernel"], "da-mmala");
    assert!(cmp["dino"]["pde_solves"].as_u64().unwrap() > 0);
    // sub-chains of 4 surrogate steps per PDE correction
    ok(&[
        "infer",
        "--problem",
        &problem,
        "--surrogate",
        &d("s_h1"),
        "--kernel",
        "da-subchain",
        "--subchain",
        "4",
        "--samples",
        "60",
        "--burn-in",
        "10",
        "--rank",
        "10",
        "--out",
        &d("inf_subchain"),
    ]);
    let report: serde_json::Value = read_json(d("inf_subchain/report.json"));
    let diag = &report["mcmc"]["diagnostics"];
    assert!(diag["subchain_acceptance_rate"].as_f64().unwrap() > 0.0);
    // one PDE solve per proposal at most (none when the sub-chain did not move), plus each of
    // the 2 chains' starting states
    assert!(diag["pde_solves"].as_u64().unwrap() <= diag["proposals"].as_u64().unwrap() + 2);
    fails(
        &[
            "infer",
            "--problem",
            &problem,
            "--surrogate",
            &d("s_h1"),
            "--kernel",
            "da-subchain",
            "--subchain",
            "0",
            "--out",
            &d("x"),
        ],
        &["--subchain"],
    );
    // a surrogate-only DINO kernel compares the surrogate's approximate posterior, and says so
    ok(&[
        "compare",
        "--problem",
        &problem,
        "--surrogate",
        &d("s_h1"),
        "--dino-kernel",
        "gpcn",
        "--samples",
        "100",
        "--burn-in",
        "10",
        "--rank",
        "10",
        "--out",
        &d("cmp_approx"),
    ]);
    let approx: serde_json::Value = read_json(d("cmp_approx/compare.json"));
    assert_eq!(approx["dino"]["samples_pde_posterior"], false);
    assert_eq!(approx["dino"]["pde_solves"].as_u64(), Some(0), "{approx}");
    let md = std::fs::read_to_string(d("cmp_approx/compare.md")).unwrap();
    assert!(md.contains("approximate posterior"), "{md}");
    // HMC on the PDE against delayed acceptance of surrogate HMC moves, chains of other lengths
    let (surrogate, cmp_hmc) = (d("s_h1"), d("cmp_hmc"));
    let compare_hmc = [
        "compare",
        "--problem",
        &problem,
        "--surrogate",
        &surrogate,
        "--pde-kernel",
        "hmc",
        "--dino-kernel",
        "da-hmc",
        "--subchain",
        "2",
        "--leapfrog-steps",
        "4",
        "--pde-samples",
        "30",
        "--samples",
        "60",
        "--burn-in",
        "10",
        "--rank",
        "10",
        "--out",
        &cmp_hmc,
    ];
    ok(&compare_hmc);
    let cmp: serde_json::Value = read_json(d("cmp_hmc/compare.json"));
    assert_eq!(cmp["pde"]["kernel"], "hmc");
    assert_eq!(cmp["dino"]["kernel"], "da-hmc");
    assert_eq!(cmp["dino"]["samples_pde_posterior"], true);
    // two chains each: their largest difference is reported as the Monte-Carlo scale
    for run in ["pde", "dino"] {
        let spread = &cmp["chain_spread"][run];
        assert!(spread["mean"].as_f64().unwrap() > 0.0, "{spread}");
        assert!(spread["variance"].as_f64().unwrap() > 0.0, "{spread}");
    }
    // the cost of each result: set-up plus every MCMC step, the latter as the chains recorded it
    for (run, folder) in [("pde", "pde"), ("dino", "surrogate")] {
        let c = &cmp[run];
        let solves = |k: &str| c[k].as_u64().unwrap();
        assert!(solves("mcmc_pde_solves") > 0, "{c}");
        assert_eq!(
            solves("pde_solves"),
            solves("setup_pde_solves") + solves("mcmc_pde_solves"),
            "{c}"
        );
        let r = read_json(d(&format!("cmp_hmc/{folder}/report.json")));
        assert_eq!(c["mcmc_pde_solves"], r["mcmc"]["diagnostics"]["pde_solves"]);
        assert_eq!(c["mcmc_wall_s"], r["mcmc"]["wall_s"]);
    }
    // ... so a compare that resumes finished chains reports the same chain cost, not just the
    // set-up it ran now
    ok(&compare_hmc);
    let resumed: serde_json::Value = read_json(d("cmp_hmc/compare.json"));
    for run in ["pde", "dino"] {
        for key in [
            "pde_solves",
            "mcmc_pde_solves",
            "mcmc_wall_s",
            "ess_per_second",
        ] {
            assert_eq!(resumed[run][key], cmp[run][key], "{run}.{key}");
        }
    }
    // ... and the Monte-Carlo floor of the PDE-vs-DINO differences, from the chains' spread
    let floor = &cmp["monte_carlo_floor"];
    for moment in ["mean", "variance"] {
        let f = floor[moment].as_f64().unwrap();
        assert!(f > 0.0 && f.is_finite(), "{floor}");
    }
    let md = std::fs::read_to_string(d("cmp_hmc/compare.md")).unwrap();
    assert!(md.contains("Monte-Carlo error alone"), "{md}");
    assert!(md.contains("largest R̂"), "{md}");
    assert!(md.contains("MCMC, all steps: PDE solves"), "{md}");
    assert!(md.contains("ESS per PDE solve"), "{md}");
    for run in ["pde", "surrogate"] {
        let r: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(d(&format!("cmp_hmc/{run}/report.json"))).unwrap(),
        )
        .unwrap();
        let diag = &r["mcmc"]["diagnostics"];
        let r_max = diag["r_hat_max"].as_f64().unwrap();
        assert_eq!(diag["converged"], r_max < 1.1, "{diag}");
    }
    let read = |run: &str| -> serde_json::Value {
        let path = d(&format!("cmp_hmc/{run}/report.json"));
        read_json(path)
    };
    let (pde, dino) = (read("pde"), read("surrogate"));
    assert_eq!(pde["mcmc"]["samples_per_chain"], 30);
    assert_eq!(dino["mcmc"]["samples_per_chain"], 60);
    let diag = &dino["mcmc"]["diagnostics"];
    // the surrogate moves accept, and the PDE solves once per proposal at most, plus the
    // chains' starting states
    assert!(diag["subchain_acceptance_rate"].as_f64().unwrap() > 0.0);
    assert!(diag["pde_solves"].as_u64().unwrap() <= diag["proposals"].as_u64().unwrap() + 2);
    assert!(
        dino["mcmc"]["diagnostics"]["acceptance_rate"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    fails(
        &[
            "infer",
            "--problem",
            &problem,
            "--surrogate",
            &d("s_h1"),
            "--kernel",
            "da-hmc",
            "--leapfrog-steps",
            "0",
            "--out",
            &d("x"),
        ],
        &["--leapfrog-steps"],
    );
    fails(
        &[
            "compare",
            "--problem",
            &problem,
            "--surrogate",
            &d("s_h1"),
            "--pde-samples",
            "0",
            "--out",
            &d("x"),
        ],
        &["--pde-samples"],
    );
    // a subspace that is not R-orthonormal is refused, naming the file
    std::fs::create_dir_all(d("not_r_orthonormal")).unwrap();
    let mut bad = ndarray_npy::read_npy::<_, ndarray::Array2<f64>>(d("s_h1/decoder.npy")).unwrap();
    bad *= 2.0;
    ndarray_npy::write_npy(d("not_r_orthonormal/decoder.npy"), &bad).unwrap();
    fails(
        &[
            "infer",
            "--problem",
            &problem,
            "--pde",
            "--kernel",
            "mmala",
            "--subspace",
            &d("not_r_orthonormal"),
            "--out",
            &d("x"),
        ],
        &["decoder.npy", "R-orthonormal"],
    );

    // bad input: exit 2 with the field named
    fails(
        &[
            "infer",
            "--problem",
            &problem,
            "--pde",
            "--step",
            "1.5",
            "--out",
            &d("x"),
        ],
        &["--step"],
    );
    fails(
        &[
            "infer",
            "--problem",
            &problem,
            "--pde",
            "--noise=-1",
            "--out",
            &d("x"),
        ],
        &["--noise"],
    );
    let other = small_problem(tmp.path(), 6);
    fails(
        &[
            "infer",
            "--problem",
            &other,
            "--surrogate",
            &d("s_h1"),
            "--out",
            &d("x"),
        ],
        &["problem.hash"],
    );
    std::fs::write(d("short.npy"), b"not an npy").unwrap();
    fails(
        &[
            "infer",
            "--problem",
            &problem,
            "--pde",
            "--true-param",
            &d("short.npy"),
            "--out",
            &d("x"),
        ],
        &["short.npy"],
    );
    fails(
        &[
            "train",
            "--problem",
            &problem,
            "--data",
            &d("train"),
            "--basis",
            &d("as"),
            "--output-rank",
            "99",
            "--out",
            &d("x"),
        ],
        &["--output-rank"],
    );
    fails(
        &[
            "infer",
            "--problem",
            &problem,
            "--pde",
            "--kernel",
            "da",
            "--out",
            &d("x"),
        ],
        &["--kernel"],
    );
}

/// The generic network (`--architecture generic`, the paper's "Generic") from the CLI: trained
/// with the H1 loss on full-Jacobian data, evaluated, used by `infer`, and run by `study`;
/// a basis or projected Jacobians are refused with the option named.
#[test]
fn generic_network_trains_evaluates_and_infers_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let d = |p: &str| tmp.path().join(p).display().to_string();
    let problem = small_problem(tmp.path(), 8);
    for (samples, seed, out) in [("96", "0", "full"), ("24", "1", "test")] {
        ok(&[
            "generate",
            "--problem",
            &problem,
            "--samples",
            samples,
            "--seed",
            seed,
            "--jacobian",
            "full",
            "--out",
            &d(out),
        ]);
    }
    let train = |extra: &[&str], out: &str| {
        let mut args = vec![
            "train",
            "--problem",
            &problem,
            "--architecture",
            "generic",
            "--width",
            "24",
            "--depth",
            "3",
            "--epochs",
            "40",
            "--batch-size",
            "16",
            "--lr",
            "3e-3",
        ];
        args.extend_from_slice(extra);
        let o = d(out);
        args.extend_from_slice(&["--out", &o]);
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>()
    };
    let args = train(&["--data", &d("full"), "--test-data", &d("test")], "g");
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let model: serde_json::Value = read_json(d("g/model.json"));
    assert_eq!(model["architecture"]["kind"], "generic");
    assert_eq!(model["architecture"]["input_basis"], "identity");
    assert_eq!(model["architecture"]["mlp"]["input"], 81);
    assert!(!tmp.path().join("g/encoder.npy").exists());
    let l2 = model["test_metrics"]["l2_accuracy"].as_f64().unwrap();
    let h1 = model["test_metrics"]["h1_accuracy"].as_f64().unwrap();
    assert!(
        l2 > 0.8 && h1 > 0.0,
        "generic test accuracies L2 {l2}, H1 {h1}"
    );
    ok(&[
        "eval",
        "--surrogate",
        &d("g"),
        "--data",
        &d("test"),
        "--problem",
        &problem,
        "--json",
        &d("g_eval.json"),
    ]);
    let eval: serde_json::Value = read_json(d("g_eval.json"));
    assert!((eval["h1_accuracy"].as_f64().unwrap() - h1).abs() < 1e-12);
    // the outer loops take it like any surrogate
    ok(&[
        "infer",
        "--problem",
        &problem,
        "--surrogate",
        &d("g"),
        "--method",
        "laplace",
        "--rank",
        "10",
        "--out",
        &d("g_inf"),
    ]);
    // a basis is not used by the generic network; projected Jacobians cannot train it
    let args = train(&["--data", &d("full"), "--basis", &d("full")], "g_bad");
    fails(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &["--basis"],
    );
    ok(&[
        "bases",
        "--problem",
        &problem,
        "--kind",
        "kle",
        "--rank",
        "8",
        "--out",
        &d("kle"),
    ]);
    ok(&[
        "generate",
        "--problem",
        &problem,
        "--samples",
        "16",
        "--jacobian",
        "projected",
        "--basis",
        &d("kle/encoder.npy"),
        "--out",
        &d("projected"),
    ]);
    let args = train(&["--data", &d("projected")], "g_bad");
    fails(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &["jacobian", "--jacobian full"],
    );
    // the study runs it beside a DIPNet, labelled "Generic"
    ok(&[
        "study",
        "--problem",
        &problem,
        "--data",
        &d("full"),
        "--test",
        &d("test"),
        "--basis",
        &d("kle"),
        "--sizes",
        "32,64",
        "--losses",
        "l2,h1",
        "--archs",
        "8-8,generic",
        "--epochs",
        "3",
        "--min-steps",
        "6",
        "--out",
        &d("study"),
    ]);
    let csv = std::fs::read_to_string(d("study/study.csv")).unwrap();
    assert_eq!(
        csv.lines().filter(|l| l.starts_with("Generic,")).count(),
        4,
        "{csv}"
    );
}

/// problems/ouu_semilinear.toml on an n × n mesh, written into `dir` (with optional text edits).
fn small_ouu_problem(dir: &Path, n: usize, edit: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/problems/ouu_semilinear.toml"
    ))
    .unwrap()
    .replace("n = 64", &format!("n = {n}"));
    for (a, b) in edit {
        assert!(text.contains(a), "{a}");
        text = text.replace(a, b);
    }
    let path = dir.join(format!("ouu{n}-{}.toml", edit.len()));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn ouu_with_pde_and_control_surrogate_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let d = |p: &str| tmp.path().join(p).display().to_string();
    let problem = small_ouu_problem(tmp.path(), 10, &[]);
    ok(&[
        "generate",
        "--problem",
        &problem,
        "--control",
        "--samples",
        "64",
        "--pod-rank",
        "10",
        "--out",
        &d("cdata"),
    ]);
    // re-running the same command finds the data complete
    ok(&[
        "generate",
        "--problem",
        &problem,
        "--control",
        "--samples",
        "64",
        "--pod-rank",
        "10",
        "--out",
        &d("cdata"),
    ]);
    ok(&[
        "generate",
        "--problem",
        &problem,
        "--control",
        "--samples",
        "16",
        "--pod-rank",
        "10",
        "--seed",
        "1",
        "--out",
        &d("ctest"),
    ]);
    ok(&[
        "bases",
        "--problem",
        &problem,
        "--kind",
        "kle",
        "--rank",
        "10",
        "--out",
        &d("kle"),
    ]);
    ok(&[
        "train",
        "--problem",
        &problem,
        "--control-data",
        &d("cdata"),
        "--basis",
        &d("kle"),
        "--loss",
        "h1",
        "--width",
        "16",
        "--depth",
        "2",
        "--epochs",
        "5",
        "--test-data",
        &d("ctest"),
        "--out",
        &d("mr"),
    ]);
    let model: serde_json::Value = read_json(d("mr/model.json"));
    assert_eq!(model["architecture"]["kind"], "mr-dino");
    assert_eq!(model["problem"]["control_dim"], 49);
    // continuing from it (--init): same coordinates, cumulative training time
    let more = |init: &str, width: &str, out: &str| {
        vec![
            "train".to_string(),
            "--problem".into(),
            problem.clone(),
            "--control-data".into(),
            d("cdata"),
            "--basis".into(),
            d("kle"),
            "--width".into(),
            width.into(),
            "--depth".into(),
            "2".into(),
            "--epochs".into(),
            "2".into(),
            "--init".into(),
            d(init),
            "--out".into(),
            d(out),
        ]
    };
    let args = more("mr", "16", "mr2");
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let model2: serde_json::Value = read_json(d("mr2/model.json"));
    assert!(
        model2["training"]["wall_s"].as_f64().unwrap()
            > model["training"]["wall_s"].as_f64().unwrap()
    );
    let args = more("mr", "12", "mr3");
    fails(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &["architecture"],
    );
    assert!(model["test_metrics"]["reduced_h1_accuracy"].is_number());
    ok(&[
        "eval",
        "--surrogate",
        &d("mr"),
        "--data",
        &d("ctest"),
        "--json",
        &d("mr-eval.json"),
    ]);
    ok(&[
        "ouu",
        "--problem",
        &problem,
        "--pde",
        "--samples",
        "4",
        "--max-iter",
        "5",
        "--fresh",
        "4",
        "--out",
        &d("ouu-pde"),
    ]);
    ok(&[
        "ouu",
        "--problem",
        &problem,
        "--surrogate",
        &d("mr"),
        "--samples",
        "4",
        "--max-iter",
        "5",
        "--fresh",
        "4",
        "--reference",
        &d("ouu-pde/report.json"),
        "--out",
        &d("ouu-mr"),
    ]);
    for f in [
        "report.json",
        "control.npy",
        "control.svg",
        "qoi_distribution.svg",
        "convergence.svg",
        "fields.vtu",
    ] {
        assert!(tmp.path().join("ouu-mr").join(f).exists(), "{f}");
    }
    let report: serde_json::Value = read_json(d("ouu-mr/report.json"));
    let z = report["optimum"]["z"].as_array().unwrap();
    assert_eq!(z.len(), 49);
    assert!(z.iter().all(|v| v.as_f64().unwrap().abs() <= 4.0));
    assert!(report["pde_check"]["reference"]["optimality_gap"].is_number());
    assert!(report["optimum"]["t"].is_number());
    // a surrogate of the whole box has no training region to report
    assert!(report["surrogate"]["training_region"].is_null());
    assert_eq!(report["start"], "z = 0");
    let report_mr = report.clone();
    // refinement: data around that optimum, a local MR-DINO that records its region, and the
    // optimization finished with it reports where its optimum lies relative to the region
    ok(&[
        "generate",
        "--problem",
        &problem,
        "--control",
        "--control-around",
        &d("ouu-mr/control.npy"),
        "--control-radius",
        "0.5",
        "--samples",
        "32",
        "--pod-rank",
        "10",
        "--out",
        &d("cdata-local"),
    ]);
    ok(&[
        "train",
        "--problem",
        &problem,
        "--control-data",
        &d("cdata-local"),
        "--basis",
        &d("kle"),
        "--width",
        "16",
        "--depth",
        "2",
        "--epochs",
        "2",
        "--out",
        &d("mr-local"),
    ]);
    let local: serde_json::Value = read_json(d("mr-local/model.json"));
    assert_eq!(local["training"]["control_region"]["radius"], 0.5);
    ok(&[
        "ouu",
        "--problem",
        &problem,
        "--surrogate",
        &d("mr-local"),
        "--samples",
        "4",
        "--max-iter",
        "5",
        "--fresh",
        "0",
        "--no-risk-neutral",
        "--out",
        &d("ouu-local"),
    ]);
    let report: serde_json::Value = read_json(d("ouu-local/report.json"));
    let region = &report["surrogate"]["training_region"];
    assert_eq!(region["radius"], 0.5);
    // without --start, a local surrogate starts at its region's centre
    assert_eq!(report["start"], "the surrogate's training-region centre");
    assert_eq!(region["centre"], report_mr["optimum"]["z"]);
    let outside = region["optimum_components_outside"].as_u64().unwrap();
    let distance = region["optimum_max_distance_outside"].as_f64().unwrap();
    assert!(
        outside <= 49 && (outside == 0) == (distance == 0.0),
        "{region}"
    );
    // bad input: clear errors naming the field, exit code 2
    fails(
        &["ouu", "--problem", &problem, "--pde", "--alpha", "1.0"],
        &["--alpha", "(0, 1)"],
    );
    fails(
        &[
            "ouu",
            "--problem",
            &problem,
            "--pde",
            "--risk",
            "meanvar",
            "--beta",
            "-1",
        ],
        &["--beta"],
    );
    fails(
        &["ouu", "--problem", &problem, "--pde", "--gamma", "-0.5"],
        &["--gamma"],
    );
    let swapped = small_ouu_problem(tmp.path(), 10, &[("lower = -4.0", "lower = 5.0")]);
    fails(
        &["ouu", "--problem", &swapped, "--pde"],
        &["control.lower / control.upper", "lower ≤ upper"],
    );
    // a surrogate of m ↦ q (no control input) is refused
    let poisson = small_problem(tmp.path(), 8);
    ok(&[
        "generate",
        "--problem",
        &poisson,
        "--samples",
        "16",
        "--jacobian",
        "none",
        "--out",
        &d("pdata"),
    ]);
    ok(&[
        "bases",
        "--problem",
        &poisson,
        "--kind",
        "kle",
        "--rank",
        "4",
        "--out",
        &d("pkle"),
    ]);
    ok(&[
        "train",
        "--problem",
        &poisson,
        "--data",
        &d("pdata"),
        "--basis",
        &d("pkle"),
        "--loss",
        "l2",
        "--width",
        "8",
        "--depth",
        "1",
        "--epochs",
        "2",
        "--output-rank",
        "4",
        "--out",
        &d("plain"),
    ]);
    fails(
        &["ouu", "--problem", &problem, "--surrogate", &d("plain")],
        &["problem.control_dim", "control input"],
    );
    // a problem without [control]
    fails(&["ouu", "--problem", &poisson, "--pde"], &["control"]);
}

/// An MCMC run killed in the middle resumes from its checkpoints (state + append-only QoI trace)
/// to exactly the result of an uninterrupted run: same QoI trace statistics, same posterior mean.
#[test]
fn a_killed_mcmc_run_resumes_to_the_uninterrupted_result() {
    let tmp = tempfile::tempdir().unwrap();
    let d = |p: &str| tmp.path().join(p).display().to_string();
    let problem = small_problem(tmp.path(), 8);
    let args = |out: &str| -> Vec<String> {
        [
            "infer",
            "--problem",
            &problem,
            "--pde",
            "--kernel",
            "gpcn",
            "--samples",
            "30000",
            "--burn-in",
            "100",
            "--rank",
            "10",
            "--save-samples",
            "6",
            "--out",
            out,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let report = |out: &str| -> serde_json::Value { read_json(format!("{out}/report.json")) };
    let whole = d("whole");
    let a: Vec<String> = args(&whole);
    ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    // the same run, killed once its first chain has checkpointed part of the way
    let killed = d("killed");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dino"))
        .args(args(&killed))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let state = tmp.path().join("killed/chains/chain_0.json");
    let started = std::time::Instant::now();
    let steps_at_kill = loop {
        let steps = std::fs::read_to_string(&state)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["steps"].as_u64());
        if let Some(s) = steps.filter(|&s| s >= 1000) {
            break Some(s);
        }
        if started.elapsed().as_secs() >= 120 {
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let _ = child.kill();
    let _ = child.wait();
    let steps_at_kill = steps_at_kill.expect("a checkpoint within 120 s");
    assert!(
        steps_at_kill < 30_100,
        "killed before the end: {steps_at_kill}"
    );
    assert!(!tmp.path().join("killed/report.json").exists());
    let b = args(&killed);
    ok(&b.iter().map(String::as_str).collect::<Vec<_>>());
    let (w, k) = (report(&whole), report(&killed));
    assert_eq!(
        w["mcmc"]["diagnostics"]["qoi"],
        k["mcmc"]["diagnostics"]["qoi"]
    );
    assert_eq!(
        w["mcmc"]["relative_error_of_mean_to_truth"],
        k["mcmc"]["relative_error_of_mean_to_truth"]
    );
    assert_eq!(
        w["mcmc"]["diagnostics"]["acceptance_rate"],
        k["mcmc"]["diagnostics"]["acceptance_rate"]
    );
    // 2 × 30 000 gpCN steps on this small problem mix: R̂ < 1.1 on every QoI
    let diag = &w["mcmc"]["diagnostics"];
    assert!(diag["r_hat_max"].as_f64().unwrap() < 1.1, "{diag}");
    assert_eq!(diag["converged"], true);
    // the trace file holds exactly the post-burn-in rows: [Φ, c_1..c_4] per step
    let trace = std::fs::metadata(tmp.path().join("killed/chains/chain_0.qoi")).unwrap();
    assert_eq!(trace.len(), 30_000 * 5 * 8);
    // a longer run continues a shorter one to the same result; a shorter one is refused
    let extended = d("extended");
    let with_samples = |n: &str| -> Vec<String> {
        let mut a = args(&extended);
        let k = a.iter().position(|s| s == "--samples").unwrap();
        a[k + 1] = n.to_string();
        a
    };
    for n in ["10000", "30000"] {
        ok(&with_samples(n)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>());
    }
    let e = report(&extended);
    assert_eq!(
        w["mcmc"]["diagnostics"]["qoi"],
        e["mcmc"]["diagnostics"]["qoi"]
    );
    assert_eq!(
        w["mcmc"]["relative_error_of_mean_to_truth"],
        e["mcmc"]["relative_error_of_mean_to_truth"]
    );
    fails(
        &with_samples("20000")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &["chains/chain_", ".json", "--samples", "30000"],
    );
    // every 6th post-burn-in state of each chain, the same after a kill or an extension
    let samples = |out: &str| -> ndarray::Array2<f64> {
        ndarray_npy::read_npy(format!("{out}/posterior_samples.npy")).unwrap()
    };
    let saved = samples(&whole);
    assert_eq!(saved.dim(), (10_000, 81));
    assert_eq!(w["mcmc"]["saved_samples"]["rows"], 10_000);
    assert_eq!(saved, samples(&killed));
    assert_eq!(saved, samples(&extended));
    // they are the chain's states: consecutive saved states differ (the chain moves), and
    // the last one of chain 1 is the state the chain ended in
    assert!(saved.row(0) != saved.row(1000));
    let last: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("whole/chains/chain_1.json")).unwrap(),
    )
    .unwrap();
    let m_end: Vec<f64> = serde_json::from_value(last["m"].clone()).unwrap();
    assert_eq!(saved.row(saved.nrows() - 1).to_vec(), m_end);
}
