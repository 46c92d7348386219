//! Optimization under uncertainty: control derivatives of the PDE (Taylor and adjoint tests),
//! Taylor tests of every SAA objective's gradient in (z, t), smoothed CVaR → exact CVaR, and the
//! bound-constrained optimizer on problems with known optima.

mod common;

use common::*;
use dino::map::ControlledMap;
use dino::ouu::{
    minimize_bounded, sample_cvar, BoundedLbfgsSettings, ControlQoi, RiskMeasure, SaaObjective,
    SampledQoi, SmoothPlus,
};
use dino::problem::Problem;
use dino::taylor::TaylorTest;

/// The shipped OUU problem on an `n × n` mesh.
fn ouu_problem(n: i64) -> Problem {
    Problem::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/problems/ouu_semilinear.toml"
    ))
    .unwrap()
    .with_mesh(n)
    .unwrap()
}

fn control(k: usize, seed: usize) -> Vec<f64> {
    (0..k)
        .map(|i| (((i * 7 + seed * 13) % 17) as f64 - 8.0) / 4.0)
        .collect()
}

#[test]
fn pde_control_derivatives_pass_taylor_and_adjoint_tests() {
    let problem = ouu_problem(16);
    let model = problem.control_problem().unwrap();
    let n_z = ControlledMap::control_dim(&model);
    assert_eq!(n_z, 49);
    let m = prior_sample(&problem, 1);
    let (z, v) = (control(n_z, 1), control(n_z, 2));
    let lin = model.linearize_control(&z, &m).unwrap();
    let t = TaylorTest::run(
        |e| {
            model
                .linearize_control(&axpy(&z, e, &v), &m)
                .unwrap()
                .output()
                .to_vec()
        },
        lin.output(),
        &lin.jvp(&v),
        0.5,
        6,
    );
    t.assert_second_order("∂u/∂z v", 0.1);
    let w: Vec<f64> = (0..lin.output().len())
        .map(|i| ((i * 5 % 13) as f64 - 6.0) / 6.0)
        .collect();
    let (a, b) = (dot(&w, &lin.jvp(&v)), dot(&lin.vjp(&w), &v));
    assert!((a - b).abs() <= 1e-10 * a.abs().max(b.abs()), "{a} vs {b}");
    let jac = lin.jacobian();
    let jv: Vec<f64> = (0..jac.nrows())
        .map(|i| dot(jac.row(i).as_slice().unwrap(), &v))
        .collect();
    let reference = lin.jvp(&v);
    let err: f64 = jv
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(err < 1e-10 * norm(&reference), "{err}");
}

/// Taylor test of J(x) along a direction for one risk measure.
fn saa_gradient_is_second_order(qoi: &dyn ControlQoi, samples: &[Vec<f64>], risk: RiskMeasure) {
    let bound = qoi.bind(samples).unwrap();
    let n_z = qoi.control_dim();
    let objective = SaaObjective::new(bound, n_z, risk, 1e-3);
    let mut x = control(n_z, 3);
    let mut dx = control(n_z, 4);
    if risk.has_auxiliary() {
        // t inside the range of Q so that the smoothed plus function is curved at some samples
        let q = objective.evaluate(&{
            let mut x0 = x.clone();
            x0.push(0.0);
            x0
        });
        let q = q.unwrap().qoi;
        x.push(dino::ouu::sample_quantile(&q, 0.5));
        dx.push(0.3);
    }
    let at = objective.evaluate(&x).unwrap();
    let t = TaylorTest::run_scalar(
        |e| objective.evaluate(&axpy(&x, e, &dx)).unwrap().value,
        at.value,
        dot(&at.gradient, &dx),
        0.05,
        6,
    );
    t.assert_second_order(&format!("∇J ({})", risk.name()), 0.15);
}

/// The Taylor test for mean, mean + variance and CVaR.
fn every_risk_gradient_is_second_order(qoi: &dyn ControlQoi, samples: &[Vec<f64>]) {
    for risk in [
        RiskMeasure::Mean,
        RiskMeasure::MeanVariance { beta: 2.0 },
        RiskMeasure::Cvar {
            alpha: 0.5,
            epsilon: 0.5,
        },
    ] {
        saa_gradient_is_second_order(qoi, samples, risk);
    }
}

#[test]
fn pde_saa_gradients_pass_taylor_tests_for_every_risk_measure() {
    let problem = ouu_problem(16);
    let model = problem.control_problem().unwrap();
    let samples: Vec<Vec<f64>> = (0..4).map(|s| prior_sample(&problem, 10 + s)).collect();
    every_risk_gradient_is_second_order(&model, &samples);
}

#[test]
fn smoothed_cvar_converges_to_the_exact_cvar() {
    // standard normal by its quantile grid: CVaR_α = φ(Φ⁻¹(α)) / (1 − α)
    use statrs::distribution::{Continuous, ContinuousCDF, Normal};
    let normal = Normal::new(0.0, 1.0).unwrap();
    let n = 200_000;
    let q: Vec<f64> = (0..n)
        .map(|i| normal.inverse_cdf((i as f64 + 0.5) / n as f64))
        .collect();
    let alpha = 0.95;
    let exact = normal.pdf(normal.inverse_cdf(alpha)) / (1.0 - alpha);
    assert!(
        (sample_cvar(&q, alpha) - exact).abs() < 2e-3,
        "{}",
        sample_cvar(&q, alpha)
    );
    let mut errors = Vec::new();
    for epsilon in [1e-1, 1e-2, 1e-3, 1e-4] {
        let s = SmoothPlus { epsilon };
        // min over t of t + E[s_ε(Q − t)]/(1 − α): the derivative 1 − E[s'_ε]/(1 − α) is
        // increasing in t, so bisect on it
        let d = |t: f64| {
            1.0 - q.iter().map(|v| s.derivative(v - t)).sum::<f64>() / (n as f64 * (1.0 - alpha))
        };
        let (mut lo, mut hi) = (-5.0, 5.0);
        for _ in 0..80 {
            let mid = 0.5 * (lo + hi);
            if d(mid) < 0.0 {
                lo = mid
            } else {
                hi = mid
            }
        }
        let t = 0.5 * (lo + hi);
        let smoothed =
            t + q.iter().map(|v| s.value(v - t)).sum::<f64>() / (n as f64 * (1.0 - alpha));
        // s_ε ≤ s⁺ ≤ s_ε + ε/2, so the smoothed CVaR lies in [CVaR − ε/(2(1−α)), CVaR]
        let err = sample_cvar(&q, alpha) - smoothed;
        assert!(
            err >= -1e-9 && err <= epsilon / (2.0 * (1.0 - alpha)) + 1e-9,
            "ε = {epsilon}: {err}"
        );
        errors.push(err);
    }
    assert!(errors.windows(2).all(|w| w[1] < w[0]), "{errors:?}");
    assert!(errors[3] < 1e-3, "{errors:?}");
}

/// Q(z, c) = ‖z − c‖² (a linear–quadratic control problem with the sample c as "parameter").
struct Quadratic;
struct BoundQuadratic(Vec<Vec<f64>>);

impl SampledQoi for BoundQuadratic {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn values_and_gradients(&self, z: &[f64]) -> Vec<dino::Result<(f64, Vec<f64>)>> {
        self.0
            .iter()
            .map(|c| {
                let d: Vec<f64> = z.iter().zip(c).map(|(a, b)| a - b).collect();
                Ok((dot(&d, &d), d.iter().map(|v| 2.0 * v).collect()))
            })
            .collect()
    }
}

impl ControlQoi for Quadratic {
    fn control_dim(&self) -> usize {
        2
    }
    fn parameter_dim(&self) -> usize {
        2
    }
    fn bind<'a>(&'a self, samples: &[Vec<f64>]) -> dino::Result<Box<dyn SampledQoi + 'a>> {
        Ok(Box::new(BoundQuadratic(samples.to_vec())))
    }
}

fn optimize(risk: RiskMeasure, samples: &[Vec<f64>], lower: f64, upper: f64) -> Vec<f64> {
    let bound = Quadratic.bind(samples).unwrap();
    let objective = SaaObjective::new(bound, 2, risk, 0.0);
    let n = objective.dim();
    let (mut lo, mut hi) = (vec![lower; n], vec![upper; n]);
    if risk.has_auxiliary() {
        lo[2] = f64::NEG_INFINITY;
        hi[2] = f64::INFINITY;
    }
    let settings = BoundedLbfgsSettings {
        max_iterations: 500,
        gtol: 1e-10,
        ftol: 0.0,
        ..Default::default()
    };
    let r = minimize_bounded(
        &vec![0.0; n],
        &lo,
        &hi,
        &settings,
        |x| objective.evaluate(x).map(|e| (e.value, e.gradient)),
        |_| {},
    )
    .unwrap();
    r.x
}

#[test]
fn the_optimizer_finds_known_optima_of_linear_quadratic_problems() {
    let samples: Vec<Vec<f64>> = (0..8)
        .map(|i| vec![3.0 + (i as f64) / 4.0, -1.0 + (i % 3) as f64])
        .collect();
    // mean risk: z* = the sample mean, clipped to the box (here z₁ hits the upper bound 3)
    let z = optimize(RiskMeasure::Mean, &samples, -3.0, 3.0);
    let mean1 = samples.iter().map(|c| c[1]).sum::<f64>() / 8.0;
    assert!(
        (z[0] - 3.0).abs() < 1e-9 && (z[1] - mean1).abs() < 1e-7,
        "{z:?}"
    );
    // CVaR_α of ‖z − c‖² in one dimension (second coordinate pinned by equal samples): samples at
    // c = 0, 0, 0, 4 and α = 0.75: CVaR = the largest of the four values, minimized at z = 2
    let samples: Vec<Vec<f64>> = [0.0, 0.0, 0.0, 4.0].iter().map(|&c| vec![c, 0.0]).collect();
    let z = optimize(
        RiskMeasure::Cvar {
            alpha: 0.75,
            epsilon: 1e-6,
        },
        &samples,
        -10.0,
        10.0,
    );
    assert!((z[0] - 2.0).abs() < 1e-2 && z[1].abs() < 1e-4, "{z:?}");
    assert!((z[2] - 4.0).abs() < 5e-2, "t = {}", z[2]);
}

/// An (untrained, randomly initialized) MR-DINO for the OUU problem on a 12 × 12 mesh, built from
/// a small control data set and a KLE basis: enough for derivative and consistency tests.
fn small_control_surrogate(dir: &std::path::Path) -> (Problem, dino::nn::ControlSurrogate) {
    use dino::bases::{kle, EigenSettings};
    use dino::nn::{control_samples, DipNet, Mlp, MlpShape};
    let problem = ouu_problem(12);
    let data = dino::data::generate_control(&problem, 24, 0, 8, None, dir, false).unwrap();
    let basis = kle(
        &problem.prior().unwrap(),
        EigenSettings {
            rank: 10,
            oversampling: 10,
            seed: 0,
        },
        &problem.hash(),
    )
    .unwrap();
    let (coords, samples) = control_samples(&data, &basis.encoder, &basis.decoder, 8).unwrap();
    assert_eq!((samples.input, samples.output), (10 + 49, 8));
    assert_eq!(samples.jacobian.as_ref().unwrap().len(), 24 * 8 * 49);
    let mlp = Mlp::new(
        MlpShape {
            input: 59,
            width: 16,
            depth: 2,
            output: 8,
        },
        3,
        &burn::tensor::Device::flex(),
    );
    let pde = problem.control_problem().unwrap();
    let surrogate = dino::nn::ControlSurrogate::new(DipNet::new(&mlp, coords), &pde).unwrap();
    (problem, surrogate)
}

#[test]
fn surrogate_reduced_qoi_matches_its_decoded_state_and_passes_taylor_tests() {
    let tmp = tempfile::tempdir().unwrap();
    let (problem, surrogate) = small_control_surrogate(tmp.path());
    let pde = problem.control_problem().unwrap();
    let samples: Vec<Vec<f64>> = (0..3).map(|s| prior_sample(&problem, 20 + s)).collect();
    let z = control(49, 5);
    // the reduced-space Q and ∇_z Q equal those of the decoded state u = ū + Φψ with the mass
    // matrix on the mesh (the general path through `ControlledMap`)
    let bound = surrogate.bind(&samples).unwrap();
    for (i, r) in bound.values_and_gradients(&z).into_iter().enumerate() {
        let (q, g) = r.unwrap();
        let lin = surrogate.linearize_control(&z, &samples[i]).unwrap();
        let (q_full, g_full) =
            dino::ouu::qoi::state_misfit(lin.as_ref(), pde.target(), |x| pde.mass_mul(x));
        assert!(
            (q - q_full).abs() < 1e-10 * q_full.abs().max(1.0),
            "{q} vs {q_full}"
        );
        let err = g
            .iter()
            .zip(&g_full)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-9 * norm(&g_full).max(1.0), "{err}");
    }
    every_risk_gradient_is_second_order(&surrogate, &samples);
}

#[test]
fn control_data_round_trip_and_bad_files_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let problem = ouu_problem(8);
    let data = dino::data::generate_control(&problem, 12, 0, 6, None, tmp.path(), false).unwrap();
    let loaded = dino::data::load_control(tmp.path()).unwrap();
    assert_eq!(loaded.u, data.u);
    assert_eq!(loaded.control_jacobian, data.control_jacobian);
    // the stored Jacobian is Φᵀ ∂u/∂z of the PDE at each sample
    let pde = problem.control_problem().unwrap();
    let i = 3;
    let state = pde
        .solve(
            data.z.row(i).as_slice().unwrap(),
            data.m.row(i).as_slice().unwrap(),
            None,
        )
        .unwrap();
    use dino::Linearization;
    let reference = data.pod_basis.t().dot(&state.jacobian());
    let stored = data.control_jacobian.index_axis(ndarray::Axis(0), i);
    let err = reference
        .iter()
        .zip(stored.iter())
        .map(|(a, b)| (a - f64::from(*b)).abs())
        .fold(0.0, f64::max);
    assert!(
        err < 1e-5 * reference.iter().fold(0.0f64, |m, v| m.max(v.abs())),
        "{err}"
    );
    // the POD basis is orthonormal
    let gram = data.pod_basis.t().dot(&data.pod_basis);
    for a in 0..6 {
        for b in 0..6 {
            let expected = if a == b { 1.0 } else { 0.0 };
            assert!((gram[[a, b]] - expected).abs() < 1e-10);
        }
    }
    // a file of the wrong shape is named in the error
    ndarray_npy::write_npy(
        tmp.path().join("z.npy"),
        &ndarray::Array2::<f64>::zeros((12, 3)),
    )
    .unwrap();
    let e = dino::data::load_control(tmp.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("z.npy") && e.contains("[12, 49]"), "{e}");
}

/// Sample 2 of 4 fails whenever z₀ > 1: the failure carries its index and reason, and the
/// optimizer treats it as insufficient decrease and reports it.
struct Fragile;

impl SampledQoi for Fragile {
    fn len(&self) -> usize {
        4
    }
    fn values_and_gradients(&self, z: &[f64]) -> Vec<dino::Result<(f64, Vec<f64>)>> {
        (0..4)
            .map(|i| {
                if i == 2 && z[0] > 1.0 {
                    return Err(dino::Error::numerical("Newton", "did not converge"));
                }
                Ok(((z[0] - 3.0).powi(2), vec![2.0 * (z[0] - 3.0)]))
            })
            .collect()
    }
}

#[test]
fn failed_samples_are_reported_with_their_index() {
    let objective = SaaObjective::new(Box::new(Fragile), 1, RiskMeasure::Mean, 0.0);
    let failure = objective.evaluate(&[2.0]).unwrap_err();
    assert_eq!(failure.sample, 2);
    assert!(failure.reason.contains("did not converge"));
    let r = minimize_bounded(
        &[0.0],
        &[-4.0],
        &[4.0],
        &BoundedLbfgsSettings::default(),
        |x| objective.evaluate(x).map(|e| (e.value, e.gradient)),
        |_| {},
    )
    .unwrap();
    assert!(r.x[0] <= 1.0 && r.x[0] > 0.5, "{:?}", r.x);
    assert!(r.failures.iter().all(|f| f.sample == 2));
    assert!(!r.failures.is_empty());
}

#[test]
fn any_diffusion_problem_with_control_and_qoi_sections_works() {
    // the Poisson problem (another PDE, other boundary conditions, Robin prior) with a 3 × 3
    // control grid and a constant target
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/problems/poisson.toml"
    ))
    .unwrap()
    .replace("n = 64 ", "n = 12 ")
        + r#"
[control]
width = 0.1
grid_x = { start = 0.25, stop = 0.75, count = 3 }
grid_y = { start = 0.25, stop = 0.75, count = 3 }
lower = -1.0
upper = 1.0

[qoi]
target = "constant"
amplitude = 0.5
"#;
    let problem = Problem::parse(&text, "poisson-control.toml").unwrap();
    let model = problem.control_problem().unwrap();
    assert_eq!(ControlledMap::control_dim(&model), 9);
    let samples: Vec<Vec<f64>> = (0..3).map(|s| prior_sample(&problem, 30 + s)).collect();
    saa_gradient_is_second_order(&model, &samples, RiskMeasure::MeanVariance { beta: 1.0 });
    // the problem's hash differs from the plain Poisson problem's, whose stays as it was
    assert_ne!(problem.hash(), poisson(12).hash());
}

#[test]
fn interrupted_control_data_generation_resumes_to_the_same_arrays() {
    use dino::data::control::generate_control_in_chunks;
    let tmp = tempfile::tempdir().unwrap();
    let problem = ouu_problem(8);
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let whole = generate_control_in_chunks(&problem, 18, 0, 6, None, &a, false, 4, None).unwrap();
    assert!(!a.join("partial").exists(), "chunks removed at the end");
    // interrupted in the forward phase after 2 chunks, then in the Jacobian phase
    assert!(generate_control_in_chunks(&problem, 18, 0, 6, None, &b, false, 4, Some(2)).is_err());
    assert!(b.join("partial/forward-4.npy").exists());
    assert!(!b.join("phase1.json").exists());
    assert!(generate_control_in_chunks(&problem, 18, 0, 6, None, &b, false, 4, Some(4)).is_err());
    assert!(b.join("phase1.json").exists());
    assert!(b.join("partial/jacobian-0.npy").exists());
    assert!(!b.join("partial/forward-0.npy").exists());
    let resumed = generate_control_in_chunks(&problem, 18, 0, 6, None, &b, false, 4, None).unwrap();
    assert_eq!(resumed.m, whole.m);
    assert_eq!(resumed.z, whole.z);
    assert_eq!(resumed.u, whole.u);
    assert_eq!(resumed.control_jacobian, whole.control_jacobian);
    assert!(!b.join("partial").exists());
}

/// `--control-around`: controls drawn in the box of half-width r around a centre, intersected
/// with the bounds; the manifest records the region, so a different region is refused in the same
/// folder; bad centres and flags are refused with the flag named.
#[test]
fn control_data_refined_around_a_control_stays_in_its_region() {
    use dino::data::control::ControlRegion;
    let tmp = tempfile::tempdir().unwrap();
    let problem = ouu_problem(8);
    let pde = problem.control_problem().unwrap();
    let (n_z, bounds) = (ControlledMap::control_dim(&pde), pde.bounds());
    // half the components at the upper bound: their draws stay in [upper − r, upper]
    let centre: Vec<f64> = (0..n_z)
        .map(|k| if k % 2 == 0 { bounds[1] } else { 0.5 })
        .collect();
    let region = ControlRegion::new(centre.clone(), 0.3, bounds, "test").unwrap();
    let dir = tmp.path().join("local");
    let data =
        dino::data::generate_control(&problem, 12, 0, 6, Some(&region), &dir, false).unwrap();
    for row in data.z.rows() {
        for (k, &z) in row.iter().enumerate() {
            let (lo, hi) = (
                (centre[k] - 0.3).max(bounds[0]),
                (centre[k] + 0.3).min(bounds[1]),
            );
            assert!((lo..=hi).contains(&z), "z_{k} = {z} outside [{lo}, {hi}]");
        }
    }
    let spread = data
        .z
        .column(1)
        .iter()
        .fold(0.0f64, |a, &z| a.max((z - 0.5).abs()));
    assert!(spread > 0.1, "the draws fill the region, spread {spread}");
    assert_eq!(data.manifest.region.as_ref(), Some(&region));
    // every draw lies inside; a control moved out of one component's interval is seen
    for row in data.z.rows() {
        assert_eq!(region.excess(row.as_slice().unwrap(), bounds), (0, 0.0));
    }
    let mut moved = centre.clone();
    moved[1] += 0.5; // interval [0.2, 0.8]: 0.2 outside
    moved[0] = bounds[1]; // at the bound, inside [upper − 0.3, upper]
    let (outside, distance) = region.excess(&moved, bounds);
    assert_eq!(outside, 1);
    assert!((distance - 0.2).abs() < 1e-12, "{distance}");
    // the same folder with another radius is another data set
    let wider = ControlRegion::new(centre.clone(), 0.6, bounds, "test").unwrap();
    assert!(dino::data::generate_control(&problem, 12, 0, 6, Some(&wider), &dir, false).is_err());
    // bad input
    assert!(ControlRegion::new(centre.clone(), 0.0, bounds, "test").is_err());
    let outside: Vec<f64> = vec![bounds[1] + 1.0; n_z];
    let err = ControlRegion::new(outside.clone(), 0.3, bounds, "z.npy")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("z.npy") && err.contains("--control-around"),
        "{err}"
    );
    let file = tmp.path().join("z.npy");
    ndarray_npy::write_npy(&file, &ndarray::Array1::from(outside)).unwrap();
    let problem_file = problem.path.display().to_string();
    let z = file.display().to_string();
    let out = tmp.path().join("cli").display().to_string();
    for (extra, field) in [
        (
            vec!["--control", "--control-around", z.as_str()],
            "--control-around",
        ),
        (vec!["--control-around", z.as_str()], "--control-around"),
    ] {
        let mut args = vec![
            "generate",
            "--problem",
            &problem_file,
            "--mesh",
            "8",
            "--samples",
            "12",
            "--pod-rank",
            "6",
            "--out",
            &out,
        ];
        args.extend_from_slice(&extra);
        fails(&args, &[field]);
    }
}
