//! The coordinates a network is trained in: loss, architecture and device names; the input
//! side (the first r_M vectors of a basis from `dino bases`, or the identity), the output basis
//! (identity for r_Q = d_Q, POD otherwise) and the training samples in those coordinates.

use std::path::Path;

use clap::ValueEnum;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::bases::Basis;
use crate::data::{Dataset, JacobianKind};
use crate::error::{Error, Result};
use crate::io::checksum;
use crate::nn::dipnet::InputBasis;
use crate::nn::train::Samples;
use crate::nn::{JacobianData, JacobianTerm, Loss, ReducedCoordinates};
use crate::problem::Problem;
use crate::store::check_made_for;

/// Loss functions by name (as the CLI and configs spell them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossName {
    /// ‖q − f‖²/‖q‖²
    L2,
    /// + ‖J − ∇f‖²_F/‖J‖²_F in the reduced bases
    H1,
    /// + ‖Σ_r − U_rᵀ∇f V_r‖²_F/‖Σ_r‖²_F (per-sample SVD)
    ReducedH1,
    /// reduced H1 on random diagonal blocks (matrix subsampling)
    Ms,
}

/// Network architectures by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchitectureName {
    /// f(m) = q̄ + U ψ(Eᵀ(m − m̄)) on the first r_M vectors of an input basis (--basis).
    Dipnet,
    /// The paper's "Generic" encoder–decoder: the MLP on all d_M coordinates of m (no input
    /// basis); its H1 loss needs full Jacobian data and costs O(d_Q d_M) per sample.
    Generic,
}

impl ArchitectureName {
    /// The name recorded as `architecture.kind`.
    pub fn kind(self) -> &'static str {
        match self {
            ArchitectureName::Dipnet => "dipnet",
            ArchitectureName::Generic => "generic",
        }
    }
}

/// Compute device for training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceName {
    Cpu,
    Cuda,
    Wgpu,
}

/// The burn device for a name; GPU backends exist only in builds with their cargo feature.
pub fn device(name: DeviceName) -> Result<burn::tensor::Device> {
    let unavailable = |feature: &str| {
        Error::invalid(
            "command line",
            "--device",
            format!("a backend of this build (rebuild with `cargo build --release --features {feature}`)"),
            feature,
        )
    };
    match name {
        DeviceName::Cpu => Ok(burn::tensor::Device::flex()),
        #[cfg(feature = "cuda")]
        DeviceName::Cuda => Ok(burn::tensor::Device::cuda(0)),
        #[cfg(not(feature = "cuda"))]
        DeviceName::Cuda => Err(unavailable("cuda")),
        #[cfg(feature = "wgpu")]
        DeviceName::Wgpu => Ok(burn::tensor::Device::wgpu(
            burn::tensor::DeviceKind::DefaultDevice,
        )),
        #[cfg(not(feature = "wgpu"))]
        DeviceName::Wgpu => Err(unavailable("wgpu")),
    }
}

/// A basis folder, refused when it was made for another problem.
pub(crate) fn load_basis(dir: &Path, problem: &Problem) -> Result<Basis> {
    let basis = Basis::load(dir)?;
    // bases made before the hash was recorded carry none
    if !basis.info.problem_hash.is_empty() {
        check_made_for(
            &dir.join("basis.json"),
            "problem_hash",
            &basis.info.problem_hash,
            &problem.hash(),
            &problem.path,
        )?;
    }
    Ok(basis)
}

/// The output basis U (d_Q × r_Q) and its kind: identity for r_Q = d_Q, POD otherwise.
fn output_basis(data: &Dataset, rank: usize) -> Result<(Array2<f64>, &'static str)> {
    let d_q = data.q.ncols();
    if rank == 0 || rank > d_q {
        return Err(Error::invalid(
            "command line",
            "--output-rank",
            format!("between 1 and d_Q = {d_q}"),
            rank,
        ));
    }
    if rank == d_q {
        return Ok((Array2::eye(d_q), "identity"));
    }
    Ok((crate::bases::pod(data, rank)?.decoder, "pod"))
}

/// The input side of a network: the first r_M vectors of a basis from `dino bases` (a DIPNet),
/// or the identity (the generic network).
#[derive(Clone, Copy)]
pub enum InputChoice<'a> {
    Basis {
        basis: &'a Basis,
        dir: &'a Path,
        rank: usize,
    },
    Identity,
}

impl InputChoice<'_> {
    fn input_basis(&self, d_m: usize) -> InputBasis {
        match self {
            InputChoice::Basis { basis, rank, .. } => {
                let cols = ndarray::s![.., ..*rank];
                InputBasis::reduced(
                    basis.encoder.slice(cols).to_owned(),
                    basis.decoder.slice(cols).to_owned(),
                )
            }
            InputChoice::Identity => InputBasis::Identity { dim: d_m },
        }
    }
}

/// The reduced coordinates (input basis, output basis of rank r_Q) fitted to a data set, its
/// training samples in network coordinates (with Jacobian targets when `with_jacobians`), and
/// the output basis kind.
pub fn reduced_samples(
    data: &Dataset,
    input: InputChoice<'_>,
    r_q: usize,
    with_jacobians: bool,
) -> Result<(ReducedCoordinates, Samples, &'static str)> {
    let (u, output_kind) = output_basis(data, r_q)?;
    let coords = ReducedCoordinates::fit(input.input_basis(data.m.ncols()), u, &data.m, &data.q)?;
    let jacobians = if with_jacobians {
        jacobian_data(data, input)?
    } else {
        None
    };
    let samples = coords.samples_from(&data.m, &data.q, jacobians);
    Ok((coords, samples, output_kind))
}

/// The Jacobian term of a loss name.
pub fn jacobian_term(loss: LossName, svd_rank: usize, ms_block: usize) -> JacobianTerm {
    match loss {
        LossName::L2 => JacobianTerm::None,
        LossName::H1 => JacobianTerm::Full,
        LossName::ReducedH1 => JacobianTerm::ReducedSvd { rank: svd_rank },
        LossName::Ms => JacobianTerm::Subsampled {
            rank: svd_rank,
            block: ms_block.min(svd_rank),
        },
    }
}

/// Jacobian data of the training set in a form the reduced coordinates take; projected data
/// must have been projected on this very basis's encoder E (the DIPNet H1 target is J E G^{−1/2}),
/// and the generic network needs full Jacobians.
pub(crate) fn jacobian_data<'a>(
    data: &'a Dataset,
    input: InputChoice<'_>,
) -> Result<Option<JacobianData<'a>>> {
    let Some(j) = data.jacobian.as_ref() else {
        return Ok(None);
    };
    match (data.manifest.jacobian, input) {
        (JacobianKind::Full, _) => Ok(Some(JacobianData::Full(j))),
        (JacobianKind::Projected, InputChoice::Identity) => Err(Error::invalid(
            "training data",
            "jacobian",
            "full Jacobians for the generic network (generate with --jacobian full), or --loss l2",
            "Jacobians projected on a basis",
        )),
        (
            JacobianKind::Projected,
            InputChoice::Basis {
                dir: basis_dir,
                rank: r_m,
                ..
            },
        ) => {
            let record = data
                .manifest
                .basis
                .as_ref()
                .expect("projected data record their basis");
            let path = basis_dir.join("encoder.npy");
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            if checksum::hex(&bytes) != record.checksum || record.rank < r_m {
                return Err(Error::invalid(
                    "command line",
                    "--basis",
                    format!(
                        "the basis whose encoder.npy the data's Jacobians were projected on ({}, rank {} ≥ r_M = {r_m}; generate with --jacobian projected --basis BASIS/encoder.npy)",
                        record.file, record.rank
                    ),
                    path.display(),
                ));
            }
            Ok(Some(JacobianData::ProjectedOnEncoder(j)))
        }
        (JacobianKind::None, _) => Ok(None),
    }
}

/// The loss with Jacobian term `term`, weighted `jacobian_weight` against the L2 term.
pub(crate) fn loss_of(term: JacobianTerm, jacobian_weight: f64) -> Loss {
    let mut loss = Loss::with_term(term);
    if term != JacobianTerm::None {
        loss.jacobian_weight = jacobian_weight;
    }
    loss
}
