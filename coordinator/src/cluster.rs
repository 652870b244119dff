//! What every part of the coordinator shares: the catalog and the live executors.

use std::sync::Arc;

use datafusion::common::Result;
use shoal_catalog::{Catalog, CatalogError, Command, Response};
use shoal_flight::error::coded;
use tonic::Code;

use crate::executor_registry::ExecutorRegistry;

#[derive(Clone)]
pub struct Cluster {
    pub catalog: Catalog,
    pub executors: ExecutorRegistry,
}

impl Cluster {
    pub fn new(catalog: Catalog) -> Arc<Self> {
        Arc::new(Self {
            catalog,
            executors: ExecutorRegistry::default(),
        })
    }

    /// Proposes a catalog change; rejections become errors with the matching gRPC code.
    pub async fn propose(&self, command: Command) -> Result<Response> {
        self.catalog.propose(command).await.map_err(catalog_error)
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("executors", &self.executors)
            .finish()
    }
}

/// A catalog error as a DataFusion error that keeps the right gRPC code.
pub fn catalog_error(err: CatalogError) -> datafusion::error::DataFusionError {
    use shoal_catalog::Rejection;
    let code = match &err {
        CatalogError::Rejected(Rejection::TableExists(_)) => Code::AlreadyExists,
        CatalogError::Rejected(Rejection::TableNotFound(_)) => Code::NotFound,
        CatalogError::Rejected(Rejection::TableChanged(_)) => Code::Aborted,
        CatalogError::Misconfigured(_) => Code::FailedPrecondition,
        CatalogError::Rejected(_) => Code::InvalidArgument,
        e if e.retryable() => Code::Unavailable,
        _ => Code::Internal,
    };
    coded(code, err.to_string())
}
