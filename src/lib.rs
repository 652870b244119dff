//! Shoal: a distributed SQL warehouse over sharded Parquet. This crate is the `shoal` binary's
//! library: the SQL client, the in-process cluster behind `shoal demo` and the tests, and the
//! TPC-H data generator.

pub mod admin;
pub mod bench;
pub mod cli;
pub mod demo;
pub mod local_cluster;
pub mod python_venv;
pub mod tpch;
