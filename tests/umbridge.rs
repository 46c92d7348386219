//! `dino serve` against the official UM-Bridge Python client (`pip install umbridge`; `.ci/run`
//! installs it): Evaluate, Gradient, ApplyJacobian and ApplyHessian equal the in-process PDE
//! model's q, Jᵀ s, J v and ∂²(s·q)/∂m² v to 1e-10; the log-posterior and its gradient equal the
//! posterior's; 8 concurrent clients get the serial answers; every bad request gets the
//! protocol's status and error type; the server keeps serving after garbage.

mod common;

const POISSON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/problems/poisson.toml");

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use dino::inference::{synthetic_data, Posterior};
use dino::misfit::GaussianMisfit;
use dino::problem::Problem;
use serde_json::Value;

fn start(problem: &str, port: u16) -> Server {
    Server::spawn(dino_serve_command(problem, 12, 4, port), port)
}

fn vector(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let err = norm(&axpy(a, -1.0, b)) / norm(b).max(1e-300);
    assert!(err < 1e-10, "{what}: relative difference {err:.2e}");
}

#[test]
fn the_official_python_client_gets_the_pde_models_answers() {
    let check = Command::new("python3")
        .args(["-c", "import umbridge"])
        .output();
    assert!(
        check.is_ok_and(|o| o.status.success()),
        "this test drives dino serve with the official UM-Bridge client: pip install umbridge"
    );
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/problems/reaction_diffusion.toml"
    );
    let port = free_port();
    let _server = start(file, port);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("client.json");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/umbridge/client.py");
    let run = Command::new("python3")
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();

    let problem = Problem::load(file).unwrap().with_mesh(12).unwrap();
    let model = problem.model().unwrap();
    let (n, k) = (model.input_dim(), model.output_dim());
    assert_eq!(
        (r["input_size"].as_u64(), r["output_size"].as_u64()),
        (Some(n as u64), Some(k as u64))
    );
    assert_eq!(r["support"], serde_json::json!([true, true, true, true]));
    let m: Vec<f64> = (0..n).map(|i| 0.3 * (i as f64).sin()).collect();
    let s: Vec<f64> = (0..k).map(|j| (j as f64).cos()).collect();
    let v: Vec<f64> = (0..n).map(|i| (2.0 * i as f64).sin()).collect();
    let lin = model.linearize(&m).unwrap();
    close(&vector(&r["evaluate"]), lin.output(), "Evaluate");
    close(&vector(&r["gradient"]), &lin.vjp(&s), "Gradient");
    close(&vector(&r["apply_jacobian"]), &lin.jvp(&v), "ApplyJacobian");
    close(
        &vector(&r["apply_hessian"]),
        &lin.second_order_action(&s, &v).unwrap(),
        "ApplyHessian",
    );

    // the posterior of `dino infer`'s defaults: truth = prior sample of seed 0, noise seed 0
    let prior = problem.prior().unwrap();
    let m_true = prior.sample(&mut dino::rng::stream(
        0,
        dino::rng::Purpose::PriorSample,
        1 << 40,
    ));
    let relative = problem.noise_relative().unwrap();
    let (data, sigma) = synthetic_data(model.as_ref(), &m_true, relative, 0).unwrap();
    let post = Posterior::new(
        model.as_ref(),
        &prior,
        GaussianMisfit::new(data, sigma * sigma).unwrap(),
    )
    .unwrap();
    let point = post.linearize(&m).unwrap();
    let log_pi = r["log_posterior"].as_f64().unwrap();
    assert!(
        (log_pi + point.cost.total).abs() < 1e-10 * log_pi.abs(),
        "{log_pi}"
    );
    let minus_g: Vec<f64> = point.gradient.iter().map(|g| -g).collect();
    close(
        &vector(&r["log_posterior_gradient"]),
        &minus_g,
        "posterior Gradient",
    );

    assert_eq!(
        r["concurrent_equal"],
        Value::Bool(true),
        "8 concurrent clients"
    );
    let errors = &r["errors"];
    for (case, status, kind) in [
        ("wrong_name_no_input", 400, "ModelNotFound"),
        ("no_body", 400, "InvalidInput"),
        ("garbage", 400, "InvalidInput"),
        ("short_input", 400, "InvalidInput"),
        ("not_list_of_lists", 400, "InvalidInput"),
        ("two_inputs", 400, "InvalidInput"),
        ("bad_out_wrt", 400, "InvalidInput"),
        ("short_sens", 400, "InvalidInput"),
        ("short_vec", 400, "InvalidInput"),
        ("model_info_wrong_name", 400, "ModelNotFound"),
        ("input_sizes_wrong_name", 400, "ModelNotFound"),
    ] {
        assert_eq!(errors[case], serde_json::json!([status, kind]), "{case}");
    }
    // still serving after all that
    assert_eq!(r["info"]["protocolVersion"].as_f64(), Some(1.0));
    assert_eq!(
        r["info"]["models"],
        serde_json::json!(["forward", "posterior"])
    );
}

#[test]
fn sigint_and_sigterm_stop_the_server_cleanly() {
    for signal in ["-INT", "-TERM"] {
        let port = free_port();
        let mut command = dino_serve_command(POISSON, 8, 3, port);
        command.stderr(Stdio::piped());
        let mut server = Server::spawn(command, port);
        // one request first: the server is serving
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        std::io::Write::write_all(&mut stream, b"GET /Info HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut answer = [0u8; 64];
        let n = std::io::Read::read(&mut stream, &mut answer).unwrap();
        assert!(String::from_utf8_lossy(&answer[..n]).contains("200"));
        drop(stream);
        let pid = server.0.id().to_string();
        assert!(Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let status = loop {
            if let Some(status) = server.0.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "dino serve did not stop on SIG{signal}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(server.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(
            status.success(),
            "exit status {status} on {signal}: {stderr}"
        );
        assert!(stderr.contains("stopped"), "{stderr}");
    }
}
