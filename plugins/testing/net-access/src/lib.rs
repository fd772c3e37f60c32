//! Opens a TCP connection in `transform`, which imports `wasi:sockets`: the host must refuse to
//! load it.
#![allow(missing_docs)]

#[macro_use]
#[path = "../../common.rs"]
mod common;

hostile_plugin!(NetAccess, "net-access", |_batch| {
    let _ = std::net::TcpStream::connect("203.0.113.1:80");
    sluice_plugin_sdk::Output::default()
});
