//! Typed workflows: a plain config in, a typed outcome out, no printing (but through a progress
//! handle) and no report writing; the `dino` commands ([`crate::cli`]) turn arguments into
//! configs and write the outcomes.

pub mod compare;
pub mod infer;
