//! Plugin `swap` at version 1.0.0: one row per payload holding the version that produced it.
#![allow(missing_docs)]

const VERSION: &str = "1.0.0";

include!("../../swap.rs");
