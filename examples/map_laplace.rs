//! MAP point and low-rank Laplace approximation of the Poisson inverse problem, through the
//! library: `cargo run --release --example map_laplace`.
use dino::workflow::infer::{self, ForwardMap, InferConfig, InferOptions, Method, Quiet};

fn main() -> dino::Result<()> {
    let problem = dino::problem::Problem::load("problems/poisson.toml")?;
    let config = InferConfig {
        forward: ForwardMap::Pde,
        method: Method::Laplace,
        kernel: None,
        options: InferOptions {
            rank: 30,
            ..InferOptions::default()
        },
        chains_dir: None,
    };
    let outcome = infer::run(&problem, &config, &Quiet)?;
    let map = &outcome.report.map;
    println!(
        "MAP: {} Newton iterations, relative error to the truth {:.3}",
        map.iterations,
        map.relative_error_to_truth.unwrap_or(f64::NAN)
    );
    let laplace = outcome.report.laplace.as_ref().expect("Method::Laplace");
    println!(
        "Laplace: leading eigenvalues {:.1?}",
        &laplace.eigenvalues[..5]
    );
    let variance = &outcome.laplace_variance;
    let mean_variance = variance.iter().sum::<f64>() / variance.len() as f64;
    println!("mean posterior pointwise variance {mean_variance:.3e}");
    Ok(())
}
