//! A trained MR-DINO ([`ControlSurrogate`]) as the OUU quantity of interest: Q(z, m_i) and
//! ∇_z Q(z, m_i) evaluated in the surrogate's reduced coordinates (see [`crate::nn::control`]).
//! The glue lives here, on the OUU side, so that `nn` does not depend on `ouu`.

use super::qoi::{ControlQoi, SampledQoi};
use crate::error::{Error, Result};
use crate::map::ControlledMap;
use crate::nn::control::SampledControlSurrogate;
use crate::nn::ControlSurrogate;

impl SampledQoi for SampledControlSurrogate<'_> {
    fn len(&self) -> usize {
        SampledControlSurrogate::len(self)
    }
    fn values_and_gradients(&self, z: &[f64]) -> Vec<Result<(f64, Vec<f64>)>> {
        match self.evaluate(z) {
            Ok((q, g)) => q
                .iter()
                .zip(g.rows())
                .map(|(&q, g)| Ok((q, g.to_vec())))
                .collect(),
            Err(e) => {
                let message = e.to_string();
                (0..SampledControlSurrogate::len(self))
                    .map(|_| Err(Error::numerical("control surrogate", message.clone())))
                    .collect()
            }
        }
    }
}

impl ControlQoi for ControlSurrogate {
    fn control_dim(&self) -> usize {
        ControlledMap::control_dim(self)
    }
    fn parameter_dim(&self) -> usize {
        ControlledMap::parameter_dim(self)
    }
    fn bind<'a>(&'a self, samples: &[Vec<f64>]) -> Result<Box<dyn SampledQoi + 'a>> {
        Ok(Box::new(self.bind_samples(samples)?))
    }
}
