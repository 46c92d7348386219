//! `dino generate` / `dino data`: reproducibility across threads and shards, resuming after a
//! kill, corruption detection, projected Jacobians, failures and bad input.

mod common;

use common::{dino, fails, ok};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use dino::data::load;
use ndarray::Array2;
use ndarray_npy::write_npy;

const POISSON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/problems/poisson.toml");
const REACTION_DIFFUSION: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/problems/reaction_diffusion.toml"
);

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// All .npy files of a folder, by name, with their bytes.
fn npy_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "npy"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn generate_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "generate",
        "--problem",
        POISSON,
        "--mesh",
        "8",
        "--samples",
        "40",
        "--seed",
        "7",
        "--chunk-size",
        "8",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn same_seed_gives_identical_data_with_any_threads_or_shards() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (one, two, a, b, merged) = (
        d.join("t1"),
        d.join("t2"),
        d.join("s1"),
        d.join("s2"),
        d.join("merged"),
    );
    ok(&generate_args(s(&one), &["--threads", "1"]));
    ok(&generate_args(s(&two), &["--threads", "2"]));
    assert_eq!(npy_files(&one), npy_files(&two), "1 and 2 threads differ");
    // shards 1/2 and 2/2 (the boundary, sample 20, is not a chunk boundary)
    ok(&generate_args(s(&a), &["--shard", "1/2"]));
    ok(&generate_args(s(&b), &["--shard", "2/2"]));
    ok(&["data", "merge", "--out", s(&merged), s(&a), s(&b)]);
    let whole = load(std::slice::from_ref(&one)).unwrap();
    for joined in [
        load(std::slice::from_ref(&merged)).unwrap(),
        load(&[a.clone(), b.clone()]).unwrap(),
    ] {
        assert_eq!(whole.m, joined.m);
        assert_eq!(whole.q, joined.q);
        assert_eq!(whole.jacobian, joined.jacobian);
        assert_eq!(joined.samples, (0..40).collect::<Vec<_>>());
    }
    assert_eq!(whole.jacobian.as_ref().unwrap().shape(), &[40, 50, 81]);
    // shards of different data sets are refused
    let other = d.join("other");
    ok(&[
        "generate",
        "--problem",
        POISSON,
        "--mesh",
        "8",
        "--samples",
        "40",
        "--seed",
        "8",
        "--chunk-size",
        "8",
        "--shard",
        "2/2",
        "--out",
        s(&other),
    ]);
    fails(
        &[
            "data",
            "merge",
            "--out",
            s(&d.join("bad")),
            s(&a),
            s(&other),
        ],
        &["seed"],
    );
}

#[test]
fn a_killed_run_resumes_to_the_same_data_without_redoing_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, killed) = (dir.path().join("whole"), dir.path().join("killed"));
    let args = |out: &Path| -> Vec<String> {
        [
            "generate",
            "--problem",
            POISSON,
            "--mesh",
            "24",
            "--samples",
            "3000",
            "--seed",
            "3",
            "--chunk-size",
            "50",
            "--jacobian",
            "none",
            "--threads",
            "1",
            "--out",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([out.display().to_string()])
        .collect()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_dino"))
        .args(args(&killed))
        .spawn()
        .unwrap();
    let records = |dir: &Path| -> Vec<(PathBuf, std::time::SystemTime)> {
        let mut r: Vec<_> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.map(|e| e.unwrap().path())
                    .filter(|p| {
                        p.file_name()
                            .unwrap()
                            .to_string_lossy()
                            .starts_with("chunk_")
                    })
                    .map(|p| {
                        (
                            p.clone(),
                            std::fs::metadata(&p).unwrap().modified().unwrap(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        r.sort();
        r
    };
    let start = Instant::now();
    while records(&killed).len() < 3 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = records(&killed);
    assert!(
        before.len() >= 3 && before.len() < 60,
        "kill should land mid-run: {} of 60 chunks done",
        before.len()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_dino"))
        .args(args(&killed))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = records(&killed);
    assert_eq!(after.len(), 60);
    for (path, modified) in &before {
        let now = after.iter().find(|(p, _)| p == path).unwrap().1;
        assert_eq!(*modified, now, "{} was written twice", path.display());
    }
    let out = Command::new(env!("CARGO_BIN_EXE_dino"))
        .args(args(&whole))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        npy_files(&whole),
        npy_files(&killed),
        "resumed data differ from an uninterrupted run"
    );
    // no temporary files left behind
    assert!(std::fs::read_dir(&killed).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".tmp")));
}

#[test]
fn a_corrupted_chunk_is_detected_on_load() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data");
    ok(&generate_args(s(&out), &["--jacobian", "none"]));
    let target = out.join("q_00000008_00000016.npy");
    let mut bytes = std::fs::read(&target).unwrap();
    let k = bytes.len() - 5;
    bytes[k] ^= 0x01;
    std::fs::write(&target, bytes).unwrap();
    let err = load(std::slice::from_ref(&out)).unwrap_err().to_string();
    assert!(
        err.contains("q_00000008_00000016.npy") && err.contains("checksum"),
        "{err}"
    );
    fails(
        &["data", "info", s(&out)],
        &["q_00000008_00000016.npy", "checksum"],
    );
    // re-running the generation repairs it
    ok(&generate_args(s(&out), &["--jacobian", "none"]));
    assert_eq!(load(&[out]).unwrap().len(), 40);
}

#[test]
fn projected_jacobian_is_the_full_jacobian_times_the_basis() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let basis: Array2<f64> = Array2::from_shape_fn((81, 7), |(i, j)| {
        ((i * 13 + j * 7) % 17) as f64 / 17.0 - 0.5
    });
    let basis_path = d.join("V.npy");
    write_npy(&basis_path, &basis).unwrap();
    let wide: Array2<f64> = Array2::from_shape_fn((81, 60), |(i, j)| {
        ((i * 3 + j * 11) % 19) as f64 / 19.0 - 0.5
    });
    let wide_path = d.join("W.npy");
    write_npy(&wide_path, &wide).unwrap();
    let (full, proj, proj_wide) = (d.join("full"), d.join("proj"), d.join("wide"));
    ok(&generate_args(s(&full), &[]));
    ok(&generate_args(
        s(&proj),
        &["--jacobian", "projected", "--basis", s(&basis_path)],
    ));
    ok(&generate_args(
        s(&proj_wide),
        &["--jacobian", "projected", "--basis", s(&wide_path)],
    ));
    let jf = load(&[full]).unwrap().jacobian.unwrap();
    for (dir, v) in [(proj, basis), (proj_wide, wide)] {
        let jp = load(&[dir]).unwrap().jacobian.unwrap();
        assert_eq!(jp.shape(), &[40, 50, v.ncols()]);
        for k in 0..40 {
            let jk = jf.index_axis(ndarray::Axis(0), k).mapv(f64::from);
            let expected = jk.dot(&v);
            let got = jp.index_axis(ndarray::Axis(0), k).mapv(f64::from);
            let err = (&expected - &got).mapv(|x| x * x).sum().sqrt()
                / expected.mapv(|x| x * x).sum().sqrt();
            assert!(err < 1e-5, "sample {k}: relative difference {err}");
        }
    }
}

#[test]
fn failed_samples_stop_the_run_or_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // a prior mean of −60 makes e^m ≈ 1e−26: Newton cannot solve these samples
    let problem = d.join("hopeless.toml");
    std::fs::write(
        &problem,
        std::fs::read_to_string(REACTION_DIFFUSION)
            .unwrap()
            .replacen("mean = -1.0", "mean = -60.0", 1),
    )
    .unwrap();
    let base = [
        "generate",
        "--problem",
        s(&problem),
        "--mesh",
        "8",
        "--samples",
        "6",
        "--chunk-size",
        "3",
        "--jacobian",
        "none",
    ];
    let out = d.join("stop");
    let mut args = base.to_vec();
    args.extend(["--out", s(&out)]);
    fails(
        &args,
        &["sample 0", "reaction_diffusion", "--allow-failures"],
    );
    assert!(
        !out.join("chunk_00000000_00000003.json").exists(),
        "no chunk looks complete"
    );
    let out = d.join("recorded");
    let mut args = base.to_vec();
    args.extend(["--out", s(&out), "--allow-failures"]);
    ok(&args);
    let data = load(std::slice::from_ref(&out)).unwrap();
    assert_eq!((data.len(), data.failures.len()), (0, 6));
    let info = dino(&["data", "info", s(&out)]);
    let summary: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(summary["failed_samples"], 6);
}

#[test]
fn bad_input_gives_clear_errors_and_no_partial_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("data");
    ok(&generate_args(s(&out), &["--jacobian", "none"]));
    // the same folder with another problem or seed
    let mut args = generate_args(s(&out), &["--jacobian", "none"]);
    args[2] = REACTION_DIFFUSION;
    fails(&args, &["manifest.json", "problem"]);
    let mut args = generate_args(s(&out), &["--jacobian", "none"]);
    args[8] = "8";
    fails(&args, &["manifest.json", "seed"]);
    // a basis of the wrong dimension
    let basis = d.join("V.npy");
    write_npy(&basis, &Array2::<f64>::zeros((80, 3))).unwrap();
    fails(
        &generate_args(
            s(&d.join("p")),
            &["--jacobian", "projected", "--basis", s(&basis)],
        ),
        &["V.npy", "(81, r)"],
    );
    fails(
        &generate_args(s(&d.join("p")), &["--jacobian", "projected"]),
        &["--basis"],
    );
    // an output folder that cannot be created
    let file = d.join("a_file");
    std::fs::write(&file, "x").unwrap();
    fails(&generate_args(s(&file.join("sub")), &[]), &["a_file"]);
    fails(
        &generate_args(s(&d.join("x")), &["--shard", "3/2"]),
        &["--shard"],
    );
    // a full disk: the write fails with the file named, no chunk looks complete, a re-run completes
    let full = d.join("full");
    let out = Command::new(env!("CARGO_BIN_EXE_dino"))
        .args(generate_args(s(&full), &[]))
        .env("DINO_SIMULATE_DISK_FULL_AFTER", "100000")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("J_00000000_00000008.npy") && stderr.contains("space"),
        "{stderr}"
    );
    assert!(!full.join("chunk_00000000_00000008.json").exists());
    assert!(std::fs::read_dir(&full).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".tmp")));
    ok(&generate_args(s(&full), &[]));
    assert_eq!(load(&[full]).unwrap().len(), 40);
}
