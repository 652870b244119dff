//! shoal-executor: holds shard files and runs plan fragments next to them.
//!
//! One gRPC port serves two services: Shoal's Flight service (write, scan and delete shard
//! files) and the datafusion-distributed worker that runs plan stages. The executor registers
//! with the coordinator and heartbeats so that the planner routes work to it.

pub mod error;
pub mod flight_service;
pub mod heartbeat;
pub mod memory;
pub mod server;
pub mod shard_store;
pub mod worker;

pub use error::ExecutorError;
pub use memory::{ByteSize, MemoryConfig};
pub use server::{ExecutorConfig, serve};
