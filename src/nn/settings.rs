//! What a training run is asked to do ([`TrainSettings`]: Adam's schedule, batches, early
//! stopping, resumption) and what it records ([`EpochRecord`] per epoch, [`StopReason`]).

/// Training settings.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainSettings {
    pub epochs: usize,
    pub batch_size: usize,
    /// Learning rate of the first epoch.
    pub learning_rate: f64,
    /// Learning rate of the last epoch; the rate decays geometrically in between.
    pub final_learning_rate: f64,
    /// Stop when the validation loss has not improved for this many epochs (None: never).
    pub patience: Option<usize>,
    pub seed: u64,
    /// Show a progress bar on stderr.
    #[serde(skip)]
    pub progress: bool,
    /// Folder of the mid-run state: written after every epoch, resumed from when it belongs to
    /// the same run, removed when training ends (see [`super::resume`]).
    #[serde(skip)]
    pub resume_dir: Option<std::path::PathBuf>,
}

impl TrainSettings {
    /// Constant learning rate, no early stopping, no progress bar.
    pub fn adam(epochs: usize, batch_size: usize, learning_rate: f64, seed: u64) -> Self {
        TrainSettings {
            epochs,
            batch_size,
            learning_rate,
            final_learning_rate: learning_rate,
            patience: None,
            seed,
            progress: false,
            resume_dir: None,
        }
    }

    /// The learning rate of epoch e (geometric interpolation).
    pub fn learning_rate_at(&self, epoch: usize) -> f64 {
        if self.epochs <= 1 {
            return self.learning_rate;
        }
        let t = epoch as f64 / (self.epochs - 1) as f64;
        self.learning_rate * (self.final_learning_rate / self.learning_rate).powf(t)
    }
}

/// One line of the training log.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub learning_rate: f64,
    /// Mean over batches of the L2 and Jacobian terms and of the weighted loss.
    pub train_l2: f64,
    pub train_jacobian: Option<f64>,
    pub train_loss: f64,
    pub validation_l2: Option<f64>,
    pub validation_jacobian: Option<f64>,
    pub validation_loss: Option<f64>,
    pub seconds: f64,
}

/// Why training stopped.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    Completed,
    EarlyStopping,
    /// The loss became NaN or infinite in this epoch; the best network so far is kept.
    NonFiniteLoss {
        epoch: usize,
    },
}
