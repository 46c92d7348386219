//! Reading a Gmsh mesh of about 10⁶ triangles (MSH 2.2 ASCII, 501,264 nodes, 1,002,528
//! triangles: the 708² square with its interior vertices jittered, so no structured fast path
//! applies) and locating 10⁴ observation points in it (bucket grid).
//! `cargo bench --bench mesh`.

use criterion::{criterion_group, criterion_main, Criterion};
use dino::fem::mesh_file::{read_mesh, write_msh22};
use dino::fem::{BoundaryGroup, Mesh};

/// The n × n square with interior vertices moved by up to 0.3 h in each direction.
fn jittered_square(n: usize) -> Mesh {
    let square = Mesh::unit_square(n);
    let h = 1.0 / n as f64;
    let vertices: Vec<[f64; 2]> = square
        .vertices()
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let interior = p[0] > 0.0 && p[0] < 1.0 && p[1] > 0.0 && p[1] < 1.0;
            let s = if interior { 0.3 * h } else { 0.0 };
            let (a, b) = ((k as f64 * 0.618).fract(), (k as f64 * 0.414).fract());
            [p[0] + s * (2.0 * a - 1.0), p[1] + s * (2.0 * b - 1.0)]
        })
        .collect();
    let groups: Vec<BoundaryGroup> = square.boundary_groups().to_vec();
    Mesh::from_parts("jittered", vertices, square.triangles().to_vec(), groups).unwrap()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.msh");
    let mesh = jittered_square(708);
    std::fs::write(&path, write_msh22(&mesh)).unwrap();
    let mut group = c.benchmark_group("mesh");
    group.sample_size(10);
    group.bench_function("read 1e6-triangle msh 2.2 ascii", |b| {
        b.iter(|| read_mesh(&path).unwrap())
    });
    let (read, _) = read_mesh(&path).unwrap();
    assert_eq!(read.num_triangles(), 2 * 708 * 708);
    let points: Vec<[f64; 2]> = (0..10_000)
        .map(|k| {
            let k = k as f64;
            [
                0.01 + 0.98 * (k * 0.7548776662).fract(),
                0.01 + 0.98 * (k * 0.5698402910).fract(),
            ]
        })
        .collect();
    group.bench_function("locate 1e4 points in 1e6 triangles", |b| {
        b.iter(|| {
            points
                .iter()
                .filter(|p| read.locate(p[0], p[1]).is_some())
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
