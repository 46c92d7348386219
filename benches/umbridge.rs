//! HTTP + JSON overhead of UM-Bridge in dino: one Evaluate of a 4,225-vector (the Poisson
//! problem's d_M on 64²) by dino's client against `dino serve` on loopback, with a model that
//! costs nothing (F(x) = x), so the time is the protocol's: request and response JSON both ways,
//! HTTP, the server's checks; and the server's share alone (parse, check, answer, in process).
//! `cargo bench --bench umbridge`.

use criterion::{criterion_group, criterion_main, Criterion};
use dino::umbridge::client::{ClientSettings, UmBridgeModel};
use dino::umbridge::server::{respond, serve, Served};
use dino::umbridge::{ServedModel, Support};

/// F(x) = x on ℝⁿ.
struct Identity(usize);

impl ServedModel for Identity {
    fn input_size(&self) -> usize {
        self.0
    }
    fn output_size(&self) -> usize {
        self.0
    }
    fn support(&self) -> Support {
        Support {
            evaluate: true,
            gradient: false,
            apply_jacobian: false,
            apply_hessian: false,
        }
    }
    fn evaluate(&self, x: &[f64]) -> dino::Result<Vec<f64>> {
        Ok(x.to_vec())
    }
    fn gradient(&self, _: &[f64], _: &[f64]) -> dino::Result<Vec<f64>> {
        unreachable!()
    }
    fn apply_jacobian(&self, _: &[f64], _: &[f64]) -> dino::Result<Vec<f64>> {
        unreachable!()
    }
    fn apply_hessian(&self, _: &[f64], _: &[f64], _: &[f64]) -> dino::Result<Option<Vec<f64>>> {
        unreachable!()
    }
}

fn bench(c: &mut Criterion) {
    let n = 4225;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let models: &'static [Served<'static>] = Box::leak(Box::new([Served {
        name: "identity".into(),
        model: Box::new(Identity(n)),
    }]));
    std::thread::spawn(move || serve(models, "127.0.0.1", port, 1));
    let url = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "server did not start");
    }
    let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();

    // what dino sees driving an external model: its client against its server
    let client = UmBridgeModel::connect(
        &[url],
        "identity",
        serde_json::json!({}),
        ClientSettings::default(),
    )
    .unwrap();
    c.bench_function("umbridge_evaluate_4225_loopback", |b| {
        b.iter(|| assert_eq!(client.evaluate_remote(&x).unwrap().len(), n))
    });

    // the server's part alone, in process: read the name and the request, check, answer
    let text =
        serde_json::to_string(&serde_json::json!({"name": "identity", "input": [x], "config": {}}))
            .unwrap();
    c.bench_function("umbridge_server_json_4225", |b| {
        b.iter(|| assert_eq!(respond(models, "POST", "/Evaluate", &text).0, 200))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
