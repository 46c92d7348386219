//! Reduced bases: orthonormal in the stated inner product, encode ∘ decode = identity on the span,
//! the active subspace the same from PDE solves and from stored Jacobians, clear errors.

use std::path::Path;
use std::process::Command;

use dino::bases::{
    active_subspace_from_data, active_subspace_from_map, jjt, kle, pod, Basis, EigenSettings,
};

fn eig(rank: usize, oversampling: usize, seed: u64) -> EigenSettings {
    EigenSettings {
        rank,
        oversampling,
        seed,
    }
}
use dino::data::{generate, load, GenerateOptions};
use dino::misfit::NoiseCovariance;
use dino::problem::{NoiseModel, Problem};
use ndarray::{Array1, Array2};

const POISSON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/problems/poisson.toml");

fn problem() -> Problem {
    Problem::load(POISSON).unwrap().with_mesh(8).unwrap()
}

fn dataset(dir: &Path, samples: usize, seed: u64) -> dino::data::Dataset {
    let options = GenerateOptions {
        chunk_size: 16,
        ..GenerateOptions::new(samples, seed, dir)
    };
    generate(&problem(), &options).unwrap();
    load(&[dir.to_path_buf()]).unwrap()
}

/// Vᵀ W V = I for the weight W given as a matrix product, and encode(decode(c)) = c.
fn check(basis: &Basis, weight: impl Fn(&[f64]) -> Vec<f64>) {
    let v = &basis.decoder;
    let r = v.ncols();
    let wv = Array2::from_shape_fn(v.dim(), |(i, j)| weight(&v.column(j).to_vec())[i]);
    let gram = v.t().dot(&wv);
    let err = (&gram - &Array2::<f64>::eye(r))
        .iter()
        .fold(0.0f64, |m, x| m.max(x.abs()));
    assert!(err < 1e-8, "{:?}: Vᵀ W V − I = {err}", basis.info.kind);
    let c: Vec<f64> = (0..r).map(|i| (i as f64 * 0.77).sin()).collect();
    let back = basis.encode(&basis.decode(&c).to_vec());
    let err = (&back - &Array1::from(c))
        .iter()
        .fold(0.0f64, |m, x| m.max(x.abs()));
    assert!(
        err < 1e-8,
        "{:?}: encode∘decode error {err}",
        basis.info.kind
    );
    assert!(
        basis
            .eigenvalues
            .windows(2)
            .into_iter()
            .all(|w| w[0] >= w[1]),
        "eigenvalues decrease"
    );
}

#[test]
fn every_basis_is_orthonormal_and_encode_decode_is_the_identity() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 48, 1);
    let problem = problem();
    let prior = problem.prior().unwrap();
    let model = problem.model().unwrap();
    check(
        &kle(&prior, eig(20, 10, 0), &problem.hash()).unwrap(),
        |x| prior.mass_mul(x),
    );
    let as_data =
        active_subspace_from_data(&data, &prior, &NoiseModel::Relative(0.01), eig(20, 10, 0))
            .unwrap();
    check(&as_data, |x| prior.precision_mul(x));
    check(
        &active_subspace_from_map(
            model.as_ref(),
            &prior,
            8,
            &NoiseModel::Relative(0.01),
            eig(20, 10, 0),
            &problem.hash(),
        )
        .unwrap(),
        |x| prior.precision_mul(x),
    );
    check(&pod(&data, 10).unwrap(), |x| x.to_vec());
    check(&jjt(&data, 10).unwrap(), |x| x.to_vec());
    // save → load → identical
    let out = dir.path().join("as");
    as_data.save(&out).unwrap();
    let back = Basis::load(&out).unwrap();
    assert_eq!(back.decoder, as_data.decoder);
    assert_eq!(back.encoder, as_data.encoder);
    assert!(std::fs::read_to_string(out.join("eigenvalues.svg"))
        .unwrap()
        .contains("<polyline"));
}

/// The same 16 samples (seed 3): H is exactly low-rank (≤ 81 = d_M here) and rank + oversampling
/// ≥ 81, so both randomized solves are exact; they differ only by the float32 storage of the
/// Jacobians. Returns the eigenvalues from the data.
fn active_subspace_from_pde_solves_equals_the_one_from_stored_jacobians(
    noise: &NoiseModel,
) -> Vec<f64> {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 16, 3);
    let problem = problem();
    let prior = problem.prior().unwrap();
    let model = problem.model().unwrap();
    let from_data = active_subspace_from_data(&data, &prior, noise, eig(10, 75, 0)).unwrap();
    let from_pde = active_subspace_from_map(
        model.as_ref(),
        &prior,
        16,
        noise,
        eig(10, 75, 3),
        &problem.hash(),
    )
    .unwrap();
    for i in 0..10 {
        let (a, b) = (from_data.eigenvalues[i], from_pde.eigenvalues[i]);
        assert!((a - b).abs() < 1e-4 * a, "λ_{i}: {a} (data) vs {b} (PDE)");
    }
    from_data.eigenvalues.to_vec()
}

#[test]
fn active_subspace_from_pde_solves_equals_the_one_from_stored_jacobians_relative_noise() {
    active_subspace_from_pde_solves_equals_the_one_from_stored_jacobians(&NoiseModel::Relative(
        0.01,
    ));
}

/// With a correlated Γ (H = (1/N) Σ Jᵀ Γ⁻¹ J through Γ's Cholesky factor) both paths agree, and
/// a full Γ = σ² I gives the eigenvalues of the isotropic σ.
#[test]
fn active_subspace_with_correlated_noise() {
    let d_q = problem().model().unwrap().output_dim();
    let correlated = NoiseCovariance::dense(Array2::from_shape_fn((d_q, d_q), |(i, j)| {
        1e-4 * ((-(i as f64 - j as f64).abs() / 3.0).exp() + if i == j { 0.1 } else { 0.0 })
    }))
    .unwrap();
    active_subspace_from_pde_solves_equals_the_one_from_stored_jacobians(&NoiseModel::Fixed(
        correlated,
    ));
    let full = NoiseCovariance::dense(Array2::from_diag_elem(d_q, 4e-4)).unwrap();
    let a = active_subspace_from_pde_solves_equals_the_one_from_stored_jacobians(
        &NoiseModel::Fixed(full),
    );
    let b = active_subspace_from_pde_solves_equals_the_one_from_stored_jacobians(
        &NoiseModel::Fixed(NoiseCovariance::isotropic(4e-4).unwrap()),
    );
    for (x, y) in a.iter().zip(&b) {
        // the data path rounds Γ⁻¹ J x to float32
        assert!((x - y).abs() <= 1e-6 * y, "{x} vs {y}");
    }
}

#[test]
fn bases_cli_writes_files_and_rejects_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    dataset(&d.join("data"), 16, 1);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_dino"))
            .args(args)
            .output()
            .unwrap()
    };
    let data = d.join("data");
    let data = data.to_str().unwrap();
    let out = d.join("pod");
    let o = run(&[
        "bases",
        "--problem",
        POISSON,
        "--mesh",
        "8",
        "--kind",
        "pod",
        "--rank",
        "5",
        "--data",
        data,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "decoder.npy",
        "encoder.npy",
        "eigenvalues.npy",
        "shift.npy",
        "basis.json",
        "eigenvalues.svg",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    let fails = |args: &[&str], mention: &str| {
        let o = run(args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(mention),
            "should mention {mention}: {stderr}"
        );
    };
    let out = d.join("x");
    let out = out.to_str().unwrap();
    fails(
        &[
            "bases",
            "--problem",
            POISSON,
            "--mesh",
            "8",
            "--kind",
            "pod",
            "--rank",
            "51",
            "--data",
            data,
            "--out",
            out,
        ],
        "--rank",
    );
    fails(
        &[
            "bases",
            "--problem",
            POISSON,
            "--mesh",
            "8",
            "--kind",
            "jjt",
            "--rank",
            "5",
            "--out",
            out,
        ],
        "--data",
    );
    // data made for another mesh (another problem hash)
    fails(
        &[
            "bases",
            "--problem",
            POISSON,
            "--mesh",
            "9",
            "--kind",
            "pod",
            "--rank",
            "5",
            "--data",
            data,
            "--out",
            out,
        ],
        "problem.hash",
    );
}
