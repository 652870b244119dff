//! The executor's error type.

#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot register with coordinator {coordinator}: {message}")]
    Registration {
        coordinator: String,
        message: String,
    },
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

impl ExecutorError {
    /// Whether trying again later may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            ExecutorError::Io { .. } => false,
            ExecutorError::Registration { .. } => true,
            ExecutorError::Transport(_) => true,
        }
    }
}
