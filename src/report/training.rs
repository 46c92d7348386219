//! The training curve of a model folder: the relative squared L2 and Jacobian terms of the loss
//! per epoch, on the training and the validation samples.

use std::path::Path;

use crate::error::Result;
use crate::io::write_atomic;
use crate::nn::train::EpochRecord;
use crate::report::svg::{semilogy, Series};

/// Writes `dir/training_curve.svg` (a semilog plot of each loss term that was recorded).
pub fn write_training_curve(dir: &Path, history: &[EpochRecord]) -> Result<()> {
    let col = |f: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<f64> {
        history.iter().map(|r| f(r).unwrap_or(f64::NAN)).collect()
    };
    let (tl2, tj, vl2, vj) = (
        col(&|r| Some(r.train_l2)),
        col(&|r| r.train_jacobian),
        col(&|r| r.validation_l2),
        col(&|r| r.validation_jacobian),
    );
    let mut series = vec![Series {
        name: "train L2 term",
        values: &tl2,
    }];
    let recorded = [
        (
            "train Jacobian term",
            &tj,
            history.iter().any(|r| r.train_jacobian.is_some()),
        ),
        (
            "validation L2 term",
            &vl2,
            history.iter().any(|r| r.validation_l2.is_some()),
        ),
        (
            "validation Jacobian term",
            &vj,
            history.iter().any(|r| r.validation_jacobian.is_some()),
        ),
    ];
    for (name, values, present) in recorded {
        if present {
            series.push(Series { name, values });
        }
    }
    let svg = semilogy(
        "Training curve (relative squared errors)",
        "epoch",
        "loss term",
        &series,
    );
    write_atomic(dir.join("training_curve.svg"), |w| {
        w.write_all(svg.as_bytes())
    })
}
