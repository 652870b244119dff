//! The crate's one error type, [`CatalogError`].

use crate::model::Rejection;

/// Everything that can go wrong in the catalog, as seen by the coordinator.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The state machine refused the command; the same command will always be refused alike.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// This node cannot accept the request and did not manage to reach the leader.
    #[error("this coordinator is not the catalog leader (leader: {})", leader.as_deref().unwrap_or("unknown"))]
    NotLeader { leader: Option<String> },
    /// No quorum, no leader yet, or a deadline passed: the cluster may recover.
    #[error("catalog unavailable: {0}")]
    Unavailable(String),
    /// The local redb storage failed; the node cannot continue safely.
    #[error("catalog storage error: {0}")]
    Storage(String),
    /// openraft reported a fatal or unexpected error.
    #[error("catalog raft error: {0}")]
    Raft(String),
    /// Local I/O (data dir, listener) failed.
    #[error("catalog I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Bytes on disk or on the wire could not be (de)serialized.
    #[error("catalog encoding error: {0}")]
    Codec(String),
    /// The node's settings contradict the cluster (say, a reused node id); an operator must act.
    #[error("{0}")]
    Misconfigured(String),
    /// The catalog was shut down.
    #[error("catalog is shut down")]
    Shutdown,
}

impl CatalogError {
    /// Whether retrying the same request later may succeed. Exhaustive on purpose: a new variant
    /// must decide.
    pub fn retryable(&self) -> bool {
        match self {
            CatalogError::Rejected(_) => false,
            CatalogError::NotLeader { .. } => true,
            CatalogError::Unavailable(_) => true,
            CatalogError::Storage(_) => false,
            CatalogError::Raft(_) => false,
            CatalogError::Io(_) => false,
            CatalogError::Codec(_) => false,
            CatalogError::Misconfigured(_) => false,
            CatalogError::Shutdown => false,
        }
    }
}

impl From<redb::Error> for CatalogError {
    fn from(e: redb::Error) -> Self {
        CatalogError::Storage(e.to_string())
    }
}

impl From<bincode::Error> for CatalogError {
    fn from(e: bincode::Error) -> Self {
        CatalogError::Codec(e.to_string())
    }
}
