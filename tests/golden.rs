//! Golden outputs: behaviour pinned for fixed seeds. Every report, manifest and model file that
//! `generate`, `bases`, `train`, `study`, `infer` (map, laplace, MCMC with every kernel),
//! `compare` and `ouu` write on small problems is compared with `tests/golden/*.json`, and every
//! array file (.npy, weights) by its checksum. Fields that depend on the machine or the run
//! (timings, throughputs, paths, versions) are left out; everything else must match to the last
//! bit. After a change that is *meant* to change results, rewrite the files with
//! `DINO_BLESS=1 cargo test --release --test golden` and say why in the commit.
//!
//! Outputs downstream of f32 network training differ in the last bits between CPU classes
//! (burn's CPU kernels choose their SIMD paths by machine, so sums run in another order, and an
//! MCMC chain that screens with a surrogate then takes other steps). Such a file may have
//! variants `NAME.CPU.json` beside `NAME.json`, one per CPU class (see [`cpu_class`]); a run
//! matches when it equals any of them to the last bit. `DINO_BLESS=variant` writes the variant of
//! this machine's class for the outputs that match none, and leaves `NAME.json` alone.

mod common;

use common::ok;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Whether a JSON key holds a timing, throughput or another run-dependent value.
fn run_dependent(key: &str) -> bool {
    key.ends_with("_s")
        || key.contains("second")
        || key.contains("wall")
        || key.contains("time")
        || key == "version"
        || key == "created"
        || key == "threads"
        || key.contains("speedup")
        // a weights file's checksum covers its header, whose metadata burn writes in hash order
        || key.ends_with(".safetensors")
}

/// The JSON with run-dependent fields removed and paths made relative to the test folder.
fn normalize(v: &Value, tmp: &str) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, x) in map {
                if !run_dependent(k) {
                    out.insert(k.clone(), normalize(x, tmp));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| normalize(x, tmp)).collect()),
        Value::String(s) => Value::String(
            s.replace(tmp, "<tmp>")
                .replace(env!("CARGO_BIN_EXE_dino"), "dino")
                .replace(env!("CARGO_MANIFEST_DIR"), "<repo>"),
        ),
        _ => v.clone(),
    }
}

/// What a command left in a folder: its JSON files (normalized) and its array files' checksums.
fn snapshot(dir: &Path, tmp: &str) -> Value {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut out = Map::new();
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let ext = f.extension().map(|e| e.to_string_lossy().to_string());
        match ext.as_deref() {
            Some("json") => {
                let v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap())
                    .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
                out.insert(name, normalize(&v, tmp));
            }
            Some("safetensors") => {
                // the tensors (sorted by name, with their offsets) and their bytes; not burn's
                // metadata, which it writes in hash-map order
                let bytes = std::fs::read(&f).unwrap();
                let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
                let mut header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
                header.as_object_mut().unwrap().remove("__metadata__");
                let data = dino::io::checksum::hex(&bytes[8 + n..]);
                out.insert(name, serde_json::json!({ "tensors": header, "data": data }));
            }
            Some("csv") => {
                // the rows, without the run-dependent columns
                let text = std::fs::read_to_string(&f).unwrap();
                let mut lines = text.lines().map(|l| l.split(',').collect::<Vec<_>>());
                let header = lines.next().unwrap_or_default();
                let keep: Vec<usize> = (0..header.len())
                    .filter(|&i| !run_dependent(header[i]))
                    .collect();
                let rows: Vec<Value> = std::iter::once(header)
                    .chain(lines)
                    .map(|r| Value::from(keep.iter().map(|&i| r[i]).collect::<Vec<_>>().join(",")))
                    .collect();
                out.insert(name, Value::Array(rows));
            }
            Some("npy") => {
                let bytes = std::fs::read(&f).unwrap();
                out.insert(name, Value::String(dino::io::checksum::hex(&bytes)));
            }
            _ => {}
        }
    }
    Value::Object(out)
}

/// The SIMD class of this CPU, which decides burn's f32 kernels (e.g. `x86_64-avx512`).
fn cpu_class() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let level = if std::is_x86_feature_detected!("avx512f") {
            "avx512"
        } else if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            "avx2"
        } else {
            "sse"
        };
        format!("x86_64-{level}")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH.to_string()
    }
}

/// Compares a snapshot with `tests/golden/NAME.json` and its CPU-class variants
/// `NAME.CPU.json` (or writes them, see the module comment).
fn check(name: &str, dir: &Path, tmp: &str, failures: &mut Vec<String>) {
    let got = snapshot(dir, tmp);
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let path = folder.join(format!("{name}.json"));
    let bless = std::env::var("DINO_BLESS").ok();
    if bless.as_deref().is_some_and(|b| b != "variant") {
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (bless with DINO_BLESS=1)", path.display()));
    let want: Value = serde_json::from_str(&text).unwrap();
    let prefix = format!("{name}.");
    let variants = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let file = p.file_name().unwrap().to_string_lossy();
            file.starts_with(&prefix) && file.ends_with(".json") && p != &path
        })
        .map(|p| serde_json::from_str::<Value>(&std::fs::read_to_string(p).unwrap()).unwrap());
    if got == want || variants.into_iter().any(|v| v == got) {
        return;
    }
    if bless.is_some() {
        let variant = folder.join(format!("{name}.{}.json", cpu_class()));
        std::fs::write(&variant, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
        return;
    }
    failures.push(format!(
        "{} (CPU class {})",
        first_difference(name, &want, &got, String::new()),
        cpu_class()
    ));
}

/// Where two JSON values first differ, for the failure message.
fn first_difference(name: &str, want: &Value, got: &Value, at: String) -> String {
    match (want, got) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, x) in a {
                match b.get(k) {
                    None => return format!("{name}: {at}/{k} missing"),
                    Some(y) if x != y => return first_difference(name, x, y, format!("{at}/{k}")),
                    _ => {}
                }
            }
            let extra: Vec<&String> = b.keys().filter(|k| !a.contains_key(*k)).collect();
            format!("{name}: {at} has new keys {extra:?}")
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                if x != y {
                    return first_difference(name, x, y, format!("{at}[{i}]"));
                }
            }
            format!("{name}: {at}")
        }
        _ => format!("{name}: {at}: expected {want}, found {got}"),
    }
}

fn small_problem(dir: &Path, file: &str, from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
        .unwrap()
        .replace(from, to);
    let path = dir.join(Path::new(file).file_name().unwrap());
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn run(args: &[String]) {
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[test]
fn outputs_match_the_golden_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().display().to_string();
    let d = |p: &str| tmp.path().join(p).display().to_string();
    let mut failures = Vec::new();
    let problem = small_problem(tmp.path(), "problems/poisson.toml", "n = 64 ", "n = 8 ");

    // data: full and projected Jacobians, bases from data and from pilots
    run(&strings(&[
        "generate",
        "--problem",
        &problem,
        "--samples",
        "24",
        "--seed",
        "3",
        "--jacobian",
        "full",
        "--chunk-size",
        "10",
        "--out",
        &d("full"),
    ]));
    check(
        "generate_full",
        tmp.path().join("full").as_path(),
        &root,
        &mut failures,
    );
    run(&strings(&[
        "bases",
        "--problem",
        &problem,
        "--kind",
        "active-subspace",
        "--rank",
        "8",
        "--data",
        &d("full"),
        "--out",
        &d("as"),
    ]));
    check(
        "bases_active_subspace",
        &tmp.path().join("as"),
        &root,
        &mut failures,
    );
    run(&strings(&[
        "bases",
        "--problem",
        &problem,
        "--kind",
        "kle",
        "--rank",
        "6",
        "--out",
        &d("kle"),
    ]));
    check("bases_kle", &tmp.path().join("kle"), &root, &mut failures);
    run(&strings(&[
        "generate",
        "--problem",
        &problem,
        "--samples",
        "48",
        "--jacobian",
        "projected",
        "--basis",
        &d("as/encoder.npy"),
        "--out",
        &d("proj"),
    ]));
    check(
        "generate_projected",
        &tmp.path().join("proj"),
        &root,
        &mut failures,
    );

    // training: DIPNet with the H1 loss, the generic network with L2, and the study
    run(&strings(&[
        "train",
        "--problem",
        &problem,
        "--data",
        &d("proj"),
        "--basis",
        &d("as"),
        "--output-rank",
        "8",
        "--width",
        "12",
        "--depth",
        "2",
        "--epochs",
        "6",
        "--batch-size",
        "16",
        "--lr",
        "3e-3",
        "--loss",
        "h1",
        "--test-data",
        &d("full"),
        "--out",
        &d("dip"),
    ]));
    check(
        "train_dipnet_h1",
        &tmp.path().join("dip"),
        &root,
        &mut failures,
    );
    run(&strings(&[
        "train",
        "--problem",
        &problem,
        "--data",
        &d("full"),
        "--architecture",
        "generic",
        "--width",
        "8",
        "--depth",
        "2",
        "--epochs",
        "3",
        "--loss",
        "l2",
        "--out",
        &d("gen"),
    ]));
    check(
        "train_generic_l2",
        &tmp.path().join("gen"),
        &root,
        &mut failures,
    );
    run(&strings(&[
        "study",
        "--problem",
        &problem,
        "--data",
        &d("proj"),
        "--test",
        &d("full"),
        "--basis",
        &d("as"),
        "--sizes",
        "16,32",
        "--losses",
        "l2,h1",
        "--archs",
        "4-4",
        "--epochs",
        "3",
        "--min-steps",
        "4",
        "--out",
        &d("study"),
    ]));
    check("study", &tmp.path().join("study"), &root, &mut failures);

    // inference: MAP, Laplace, and a short MCMC run with every kernel
    let infer = |name: &str, extra: &[&str]| {
        let mut args = strings(&[
            "infer",
            "--problem",
            &problem,
            "--rank",
            "8",
            "--samples",
            "40",
            "--burn-in",
            "5",
            "--chains",
            "2",
            "--out",
            &d(name),
        ]);
        args.extend(strings(extra));
        run(&args);
    };
    let cases: &[(&str, &[&str])] = &[
        ("infer_map", &["--pde", "--method", "map"]),
        (
            "infer_map_lbfgs",
            &["--pde", "--method", "map", "--optimizer", "lbfgs"],
        ),
        ("infer_laplace", &["--pde", "--method", "laplace"]),
        ("infer_pcn", &["--pde", "--kernel", "pcn", "--step", "0.2"]),
        ("infer_mala", &["--pde", "--kernel", "mala"]),
        (
            "infer_gpcn",
            &["--pde", "--kernel", "gpcn", "--save-samples", "4"],
        ),
        ("infer_mmala", &["--pde", "--kernel", "mmala"]),
        (
            "infer_hmc",
            &["--pde", "--kernel", "hmc", "--subchain", "2"],
        ),
        (
            "infer_surrogate_gpcn",
            &["--surrogate", &d("dip"), "--kernel", "gpcn"],
        ),
        (
            "infer_surrogate_hmc",
            &["--surrogate", &d("dip"), "--kernel", "hmc"],
        ),
        ("infer_da", &["--surrogate", &d("dip"), "--kernel", "da"]),
        (
            "infer_da_mmala",
            &["--surrogate", &d("dip"), "--kernel", "da-mmala"],
        ),
        (
            "infer_da_subchain",
            &[
                "--surrogate",
                &d("dip"),
                "--kernel",
                "da-subchain",
                "--subchain",
                "3",
            ],
        ),
        (
            "infer_da_hmc",
            &[
                "--surrogate",
                &d("dip"),
                "--kernel",
                "da-hmc",
                "--subchain",
                "2",
            ],
        ),
    ];
    for (name, extra) in cases {
        infer(name, extra);
        check(name, &tmp.path().join(name), &root, &mut failures);
    }
    run(&strings(&[
        "compare",
        "--problem",
        &problem,
        "--surrogate",
        &d("dip"),
        "--rank",
        "8",
        "--samples",
        "40",
        "--burn-in",
        "5",
        "--chains",
        "2",
        "--out",
        &d("compare"),
    ]));
    check("compare", &tmp.path().join("compare"), &root, &mut failures);
    for side in ["pde", "surrogate"] {
        let dir = tmp.path().join("compare").join(side);
        check(&format!("compare_{side}"), &dir, &root, &mut failures);
    }

    // optimization under uncertainty: control data, an MR-DINO, the PDE and the surrogate
    let ouu = small_problem(
        tmp.path(),
        "problems/ouu_semilinear.toml",
        "n = 64",
        "n = 8",
    );
    run(&strings(&[
        "generate",
        "--problem",
        &ouu,
        "--control",
        "--samples",
        "24",
        "--pod-rank",
        "6",
        "--out",
        &d("cdata"),
    ]));
    check(
        "generate_control",
        &tmp.path().join("cdata"),
        &root,
        &mut failures,
    );
    run(&strings(&[
        "bases",
        "--problem",
        &ouu,
        "--kind",
        "kle",
        "--rank",
        "6",
        "--out",
        &d("okle"),
    ]));
    run(&strings(&[
        "train",
        "--problem",
        &ouu,
        "--control-data",
        &d("cdata"),
        "--basis",
        &d("okle"),
        "--loss",
        "h1",
        "--width",
        "8",
        "--depth",
        "2",
        "--epochs",
        "3",
        "--out",
        &d("mr"),
    ]));
    check(
        "train_mr_dino",
        &tmp.path().join("mr"),
        &root,
        &mut failures,
    );
    run(&strings(&[
        "ouu",
        "--problem",
        &ouu,
        "--pde",
        "--samples",
        "3",
        "--max-iter",
        "4",
        "--fresh",
        "3",
        "--out",
        &d("ouu_pde"),
    ]));
    check("ouu_pde", &tmp.path().join("ouu_pde"), &root, &mut failures);
    run(&strings(&[
        "ouu",
        "--problem",
        &ouu,
        "--surrogate",
        &d("mr"),
        "--samples",
        "3",
        "--max-iter",
        "4",
        "--fresh",
        "3",
        "--reference",
        &d("ouu_pde/report.json"),
        "--out",
        &d("ouu_mr"),
    ]));
    check("ouu_mr", &tmp.path().join("ouu_mr"), &root, &mut failures);

    assert!(
        failures.is_empty(),
        "outputs differ from tests/golden:\n{}",
        failures.join("\n")
    );
}
