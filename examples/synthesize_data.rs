//! Synthetic measurements for a problem with an `[observations] data` CSV: draws the true
//! parameter (prior sample of `SEED`), solves the PDE, and rewrites the CSV with
//! value_k = u(x_k; m_true) + σ_k ξ_k and σ_k = `RELATIVE` · max |u(x; m_true)|, keeping its
//! points. Also writes the truth as `true.npy` next to the CSV.
//!
//!     cargo run --release --example synthesize_data -- problems/poisson_hole.toml 1 0.01

use dino::io::npy::write_vector;
use dino::problem::{ObservedData, Problem};
use dino::rng::{stream, Purpose};
use rand::Rng;

fn main() -> dino::error::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: synthesize_data PROBLEM.toml SEED RELATIVE_NOISE";
    let (file, seed, relative) = match &args[1..] {
        [f, s, r] => (
            f.clone(),
            s.parse::<u64>().expect(usage),
            r.parse::<f64>().expect(usage),
        ),
        _ => panic!("{usage}"),
    };
    let problem = Problem::load(&file)?;
    let observed = problem
        .observed()
        .expect("the problem has an [observations] data CSV");
    let prior = problem.prior()?;
    let m_true = prior.sample(&mut stream(seed, Purpose::PriorSample, 0));
    let q = problem.model()?.evaluate(&m_true)?;
    let sigma = relative * q.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let mut rng = stream(seed, Purpose::Noise, 0);
    let values: Vec<f64> = q
        .iter()
        .map(|v| v + sigma * rng.sample::<f64, _>(rand_distr::StandardNormal))
        .collect();
    let std = vec![sigma; values.len()];
    ObservedData::write_csv(&observed.file, &observed.points, &values, Some(&std))?;
    write_vector(observed.file.with_file_name("true.npy"), &m_true)?;
    eprintln!(
        "{}: {} values, σ = {sigma:.3e}",
        observed.file.display(),
        values.len()
    );
    Ok(())
}
