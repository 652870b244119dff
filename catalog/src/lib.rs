//! Shoal's Raft-replicated catalog: the openraft state machine, its redb storage, and the TCP Raft RPCs.
//!
//! The coordinator uses [`Catalog`]: open it on a data dir and a bound Raft listener, bootstrap
//! (or join) a cluster, `propose` [`Command`]s, and read the applied [`CatalogState`].

mod catalog;
mod error;
mod formation;
mod leader;
mod log_store;
mod model;
mod network;
mod raft_node;
mod raft_service;
mod routing;
mod state;
mod state_machine;
mod storage;
mod type_config;
mod wire;

pub use catalog::{Catalog, CatalogConfig};
pub use error::CatalogError;
pub use formation::Formation;
pub use log_store::LogStore;
pub use model::*;
pub use network::{TcpNetworkFactory, TcpRaftClient};
pub use state::CatalogState;
pub use state_machine::{CatalogSnapshotBuilder, StateMachineStore};
pub use storage::open_storage;
pub use type_config::{CatalogRaft, LogId, StoredMembership, TypeConfig};
pub use wire::{MembershipChange, NodeStatus};

/// The openraft version this crate is built on, for callers that need its types.
pub use openraft;
