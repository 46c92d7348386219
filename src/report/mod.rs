//! Reports: plots users can look at.

pub mod field;
pub mod inference;
pub mod ouu;
pub mod study;
pub mod svg;
pub mod training;
