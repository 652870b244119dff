//! shoal-coordinator: the Flight SQL front door, the planner that sends plan fragments to the
//! executors holding the shards, and the write path that commits new shards through Raft.

pub mod broadcast_joins;
pub mod bucketing;
pub mod bulk_ingest;
pub mod catalog_provider;
pub mod checked_scalar_subqueries;
pub mod cluster;
pub mod co_located_joins;
pub mod control_actions;
pub mod copy_from;
pub mod distributed;
pub mod error;
pub mod executor_registry;
pub mod export_tasks;
pub mod flight_sql;
pub mod key_sorted_runs;
pub mod pg_catalog;
pub mod pg_wire;
pub mod pruning;
pub mod query_engine;
pub mod server;
pub mod shard_table;
pub mod shard_write_sink;
pub mod stage_metrics;
pub mod table_options;
pub mod table_statistics;

pub use error::CoordinatorError;
pub use pg_wire::PgAuth;
pub use server::{Coordinator, CoordinatorConfig, Membership, RaftTiming};
