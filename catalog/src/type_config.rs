//! The openraft type configuration of the catalog and short aliases for its generic types.

use std::io::Cursor;

use crate::model::{NodeId, Request, Response};

openraft::declare_raft_types!(
    /// Catalog Raft types. A node is a coordinator; its `BasicNode::addr` is the `host:port`
    /// of its Raft listener.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A Raft log id of the catalog.
pub type LogId = openraft::LogId<NodeId>;
/// A membership config with the log id that introduced it.
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
/// The running Raft node.
pub type CatalogRaft = openraft::Raft<TypeConfig>;
/// A Raft log entry of the catalog.
pub type Entry = openraft::Entry<TypeConfig>;
/// Snapshot metadata of the catalog.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;
/// The storage error openraft expects.
pub type StorageError = openraft::StorageError<NodeId>;
