//! Opens a TCP connection in `transform`, which imports `wasi:sockets`: the host must refuse to
//! load it.
#![allow(missing_docs)]

#[path = "../../common.rs"]
mod common;

use sluice_plugin_sdk::{Batch, Manifest, Output, Plugin, Settings, SplitOutput, export_plugin};

pub struct NetAccess;

impl Plugin for NetAccess {
    fn manifest() -> Manifest {
        common::manifest("net-access", "0.1.0")
    }
    fn configure(_: &Settings) -> Result<Self, String> {
        Ok(Self)
    }
    fn split(&self, _: &Batch<'_>) -> SplitOutput {
        SplitOutput::default()
    }
    fn transform(&self, _: &Batch<'_>) -> Output {
        let _ = std::net::TcpStream::connect("203.0.113.1:80");
        Output::default()
    }
}

export_plugin!(NetAccess);
