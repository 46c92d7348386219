//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::net::TcpStream;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use dino::problem::Problem;
use dino::rng::{stream, Purpose};

/// The shipped Poisson problem on an `n × n` mesh.
pub fn poisson(n: i64) -> Problem {
    Problem::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/problems/poisson.toml"
    ))
    .unwrap()
    .with_mesh(n)
    .unwrap()
}

/// A prior sample of `problem` for seed `seed`.
pub fn prior_sample(problem: &Problem, seed: u64) -> Vec<f64> {
    problem
        .prior()
        .unwrap()
        .sample(&mut stream(seed, Purpose::PriorSample, 0))
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// a + ε b
pub fn axpy(a: &[f64], eps: f64, b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + eps * y).collect()
}

/// Runs the `dino` binary.
pub fn dino(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dino"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs `dino` expecting success.
pub fn ok(args: &[&str]) {
    let out = dino(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `dino` expecting failure; returns stderr after checking exit code 2, no panic, and that
/// every string in `mentions` appears in the message.
pub fn fails(args: &[&str], mentions: &[&str]) -> String {
    let out = dino(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "args {args:?}: stderr {stderr}");
    assert!(!stderr.contains("panicked"), "panic on bad input: {stderr}");
    for m in mentions {
        assert!(
            stderr.contains(m),
            "args {args:?}: message should mention {m:?}: {stderr}"
        );
    }
    stderr
}

/// A server process (`dino serve`, a Python model), killed when the test ends (pass or fail).
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    /// Starts `command` and waits (≤ 60 s) until it listens on `port`.
    pub fn spawn(mut command: Command, port: u16) -> Server {
        let mut server = Server(command.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.0.try_wait() {
                panic!("{command:?} exited with {status} before listening");
            }
            assert!(
                Instant::now() < deadline,
                "{command:?} did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

/// `dino serve --problem P --mesh N --threads T --port PORT`, its log discarded.
pub fn dino_serve_command(problem: &str, mesh: usize, threads: usize, port: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dino"));
    command
        .args(["serve", "--problem", problem])
        .args([
            "--mesh",
            &mesh.to_string(),
            "--threads",
            &threads.to_string(),
        ])
        .args(["--port", &port.to_string()])
        .stderr(std::process::Stdio::null());
    command
}

/// A TCP port nobody listens on now, and that no other test of this process gets (tests run
/// in parallel, and the OS may hand a just-released ephemeral port out again).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    loop {
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + ((std::process::id().wrapping_mul(7919) + 101 * k) % 30_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
