//! The coordinator's error type (errors of serving, not of statements: those are gRPC statuses).

#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    #[error("catalog: {0}")]
    Catalog(#[from] shoal_catalog::CatalogError),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl CoordinatorError {
    /// Whether trying again later may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            CoordinatorError::Catalog(e) => e.retryable(),
            CoordinatorError::Transport(_) => true,
            CoordinatorError::Io(_) => false,
        }
    }
}
