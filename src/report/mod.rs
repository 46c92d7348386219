//! Reports: plots users can look at.

pub mod field;
pub mod svg;
