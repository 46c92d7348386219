//! The chain driver, blind to the kernel: the step loop with the step's randomness
//! (chain c's step t draws from the stream (seed, chain, c·2³² + t), so chains are
//! reproducible and resume exactly), burn-in, the QoI trace [Φ, c_1, …, c_k], the sums Σ m and
//! Σ m², saved states, checkpoints and progress.

use std::path::Path;
use std::time::Instant;

use rand::Rng;

use super::checkpoint::Checkpoint;
use super::kernel::{Kernel, Uniforms};
use super::reference::QoiCoefficients;
use super::{ChainState, McmcSettings, Target};
use crate::error::Result;
use crate::rng::{stream, Purpose};

/// What every chain of a run shares.
pub(crate) struct Driver<'a> {
    pub target: &'a Target<'a>,
    pub settings: &'a McmcSettings,
    pub progress: &'a indicatif::ProgressBar,
}

/// A kernel with its state type erased, so that the kernel factory can hand out any kernel.
pub(crate) trait ChainKernel: Sync {
    /// Runs one chain from `s` to `burn_in + samples` steps (checkpointing to `checkpoint`).
    fn run(
        &self,
        driver: &Driver<'_>,
        s: ChainState,
        checkpoint: Option<&Path>,
    ) -> Result<ChainState>;
}

impl<K: Kernel> ChainKernel for K {
    fn run(
        &self,
        driver: &Driver<'_>,
        s: ChainState,
        checkpoint: Option<&Path>,
    ) -> Result<ChainState> {
        driver.run(self, s, checkpoint)
    }
}

impl Driver<'_> {
    fn run<K: Kernel>(
        &self,
        kernel: &K,
        mut s: ChainState,
        checkpoint: Option<&Path>,
    ) -> Result<ChainState> {
        let settings = self.settings;
        let started = Instant::now();
        let wall_before = s.wall_s;
        let total = settings.burn_in + settings.samples;
        let mut saved = match checkpoint {
            Some(path) => Some(Checkpoint::open(path, &s, settings)?),
            None => None,
        };
        let k = settings
            .qoi_directions
            .min(self.target.laplace.vectors.ncols());
        let qoi = QoiCoefficients::new(self.target, k);
        let mut coef_m = qoi.at(self.target, &s.m, None);
        let mut x = kernel.init(&mut s)?;
        while s.steps < total {
            let t = s.steps;
            let mut rng = stream(
                settings.seed,
                Purpose::Chain,
                (s.chain as u64) << 32 | t as u64,
            );
            let proposal = kernel.propose(&mut s, &x, &mut rng);
            let u = Uniforms {
                u1: rng.random(),
                u2: rng.random(),
            };
            s.proposals += 1;
            if let Some(moved) = kernel.accept(&mut s, &x, proposal, u) {
                coef_m = qoi.at(self.target, &moved.m, moved.coordinates.as_ref());
                s.accepted += 1;
                s.m = moved.m;
                s.phi = moved.phi;
                s.q = moved.q;
                s.q_screen = moved.q_screen;
                x = moved.state;
            }
            s.steps += 1;
            self.record(&mut s, &coef_m, saved.as_mut());
            self.progress.inc(1);
            if let Some(saved) = saved.as_mut() {
                if s.steps % settings.checkpoint_every.max(1) == 0 || s.steps == total {
                    s.wall_s = wall_before + started.elapsed().as_secs_f64();
                    saved.write(&s)?;
                }
            }
        }
        // with checkpoints the last step's checkpoint set the wall time, so the state returned
        // is the state saved (and a finished chain that is resumed adds no time)
        if checkpoint.is_none() {
            s.wall_s = wall_before + started.elapsed().as_secs_f64();
        }
        Ok(s)
    }

    /// After burn-in: the QoI row [Φ, c_1, …, c_k], the sums, and every `sample_every`-th state.
    fn record(&self, s: &mut ChainState, coef_m: &[f64], saved: Option<&mut Checkpoint<'_>>) {
        let settings = self.settings;
        if s.steps <= settings.burn_in {
            return;
        }
        let mut q = vec![s.phi];
        q.extend_from_slice(coef_m);
        s.qoi.push(q);
        for ((a, b), m) in s.sum.iter_mut().zip(s.sum_sq.iter_mut()).zip(&s.m) {
            *a += m;
            *b += m * m;
        }
        let every = settings.sample_every;
        if let Some(saved) = saved {
            if every > 0 && (s.steps - settings.burn_in) % every == 0 {
                saved.save_sample(&s.m);
            }
        }
    }
}
