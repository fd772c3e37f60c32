//! Plugin `swap` at version 2.0.0: one row per payload holding the version that produced it.
#![allow(missing_docs)]

const VERSION: &str = "2.0.0";

include!("../../swap.rs");
