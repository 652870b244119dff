//! shoal-flight: the wire between Shoal's coordinators and executors.
//!
//! Internal RPCs ride on Arrow Flight (`DoPut` writes a shard, `DoGet` scans one, `DoAction`
//! for control messages) with small JSON-encoded messages, so no protoc is needed. This crate
//! also holds the plan node both sides execute ([`ShardScanExec`]) with its codec, the
//! error mapping between DataFusion and gRPC, and the Arrow helpers for the wire.

pub mod arrow_codec;
pub mod column_stats;
pub mod error;
pub mod executor_client;
pub mod footer_cache;
pub mod incoming;
pub mod local_parquet_file;
pub mod page_pruning;
pub mod rpc;
pub mod scan_predicate;
pub mod shard_reader;
pub mod shard_scan;
pub mod shard_scan_codec;
pub mod single_row_udf;
pub mod time_sliced;
pub mod wire_types;

pub use error::{datafusion_to_status, status_to_datafusion};
pub use shard_scan::{LocalShardStore, ShardFileRef, ShardPartition, ShardScanExec};
pub use shard_scan_codec::ShardScanCodec;
