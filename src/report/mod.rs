//! Reports: plots users can look at.

pub mod svg;
