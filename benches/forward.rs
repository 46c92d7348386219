//! Forward-model costs. For each problem and mesh size:
//! `forward_solve` (assembly + factorization + solve, every Newton iteration for nonlinear models),
//! `full_jacobian` (all 50 rows on the kept factorization: one blocked 50-column solve + 50 sparse
//! products with the assembled ∂r/∂m), `jacobian_action` (one J v), `second_order_action` (the
//! full-Newton term (Σ_k w_k ∇²q_k) v: four solves and two element loops, where the model has it),
//! `cholesky_single_solve/{supernodal,simplicial}`: one single-column solve on either factor of the
//! same operator, at n = 64, 128, 256.
//! `prior_sample` (one A solve on the prior's simplicial factor), `prior_precision` (R v = A M⁻¹ A v:
//! one M solve); an MCMC step does one of each.
//! `sparsity_pattern/256`: the P1 pattern (CSC structure and element slots) of the 256² mesh,
//! built once per process for every operator.
//! Poisson at n = 64, 128, 256; the nonlinear models at n = 64, 128 (their Newton iteration counts
//! are printed when the bench starts).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use dino::problem::Problem;
use dino::rng::{stream, Purpose};
use std::hint::black_box;
use std::time::Duration;

fn problem(file: &str, n: i64) -> Problem {
    Problem::load(format!("{}/problems/{file}", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .with_mesh(n)
        .unwrap()
}

fn bench_problem(c: &mut Criterion, name: &str, file: &str, sizes: &[i64]) {
    let mut group = c.benchmark_group(name);
    group
        .measurement_time(Duration::from_secs(4))
        .sample_size(10);
    for &n in sizes {
        let problem = problem(file, n);
        let model = problem.model().unwrap();
        let prior = problem.prior().unwrap();
        let m = prior.sample(&mut stream(1, Purpose::PriorSample, 0));
        let v = prior.sample(&mut stream(2, Purpose::PriorSample, 0));
        let lin = model.solve_pde(&m).unwrap();
        eprintln!(
            "{name} n={n}: {} Newton iterations",
            lin.stats().newton_iterations
        );
        group.bench_with_input(BenchmarkId::new("forward_solve", n), &n, |b, _| {
            b.iter(|| black_box(model.solve_pde(black_box(&m)).unwrap().output()[0]))
        });
        group.bench_with_input(BenchmarkId::new("full_jacobian", n), &n, |b, _| {
            b.iter(|| black_box(lin.jacobian()))
        });
        group.bench_with_input(BenchmarkId::new("jacobian_action", n), &n, |b, _| {
            b.iter(|| black_box(lin.jvp(&v)))
        });
        let w = vec![1.0; lin.output().len()];
        if lin.second_order_action(&w, &v).is_some() {
            group.bench_with_input(BenchmarkId::new("second_order_action", n), &n, |b, _| {
                b.iter(|| black_box(lin.second_order_action(&w, &v)))
            });
        }
        if name == "poisson" {
            group.bench_with_input(BenchmarkId::new("prior_sample", n), &n, |b, _| {
                let mut rng = stream(3, Purpose::PriorSample, 0);
                b.iter(|| black_box(prior.sample(&mut rng)))
            });
            group.bench_with_input(BenchmarkId::new("prior_precision", n), &n, |b, _| {
                b.iter(|| black_box(prior.precision_mul(black_box(&v))))
            });
        }
    }
    group.finish();
}

/// One single-column solve on the supernodal and on the simplicial Cholesky factor of a
/// BiLaplacian-like operator A = 0.1 K + 5 M (the choice behind the prior's simplicial factors).
fn cholesky_single_solve(c: &mut Criterion) {
    use dino::fem::{assembly, CholeskyFactor, DofMap, Mesh, SparsePattern};
    let mut group = c.benchmark_group("cholesky_single_solve");
    group
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    for n in [64usize, 128, 256] {
        let mesh = Mesh::unit_square(n);
        let pattern = SparsePattern::new(&mesh, &DofMap::all(mesh.num_vertices()));
        let mass = assembly::assemble_mass(&mesh, &pattern);
        let stiffness = assembly::assemble_stiffness(&mesh, &pattern, [[1.0, 0.0], [0.0, 1.0]]);
        let a: Vec<f64> = mass
            .iter()
            .zip(&stiffness)
            .map(|(m, k)| 0.1 * k + 5.0 * m)
            .collect();
        let b: Vec<f64> = (0..mesh.num_vertices()).map(|i| (i as f64).sin()).collect();
        for (kind, symbolic) in [
            ("supernodal", pattern.symbolic_cholesky()),
            ("simplicial", pattern.symbolic_cholesky_for_solves()),
        ] {
            let factor = CholeskyFactor::new(&symbolic, &pattern, &a, "A").unwrap();
            group.bench_with_input(BenchmarkId::new(kind, n), &n, |bench, _| {
                bench.iter(|| black_box(factor.solve(black_box(&b))))
            });
        }
    }
    group.finish();
}

fn forward(c: &mut Criterion) {
    bench_problem(c, "poisson", "poisson.toml", &[64, 128, 256]);
    bench_problem(
        c,
        "reaction_diffusion",
        "reaction_diffusion.toml",
        &[64, 128],
    );
    bench_problem(
        c,
        "convection_reaction_diffusion",
        "convection_reaction_diffusion.toml",
        &[64, 128],
    );
}

fn sparsity_pattern(c: &mut Criterion) {
    let mesh = dino::fem::Mesh::unit_square(256);
    let dofs = dino::fem::sparse::DofMap::all(mesh.num_vertices());
    c.bench_function("sparsity_pattern/256", |b| {
        b.iter(|| black_box(dino::fem::sparse::SparsePattern::new(&mesh, &dofs)))
    });
}

criterion_group!(benches, forward, cholesky_single_solve, sparsity_pattern);
criterion_main!(benches);
