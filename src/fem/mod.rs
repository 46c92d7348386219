//! P1 finite elements on the unit square: mesh, quadrature, assembly, sparse solvers and the
//! pointwise observation operator. This layer knows nothing of models, priors or networks.

pub mod assembly;
pub mod gmsh;
pub mod mesh;
pub mod mesh_file;
pub mod observation;
pub mod p2;
pub mod quadrature;
pub mod sparse;

pub use mesh::{BoundaryGroup, Mesh, Side};
pub use observation::PointObservation;
pub use sparse::{CholeskyFactor, DofMap, SparsePattern};
