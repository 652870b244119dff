//! `pg_catalog` for Postgres clients: the tables and functions psql's `\d`, `\dt`, `\l` and BI
//! tools query, from datafusion-pg-catalog, fed with Shoal's catalog. One schema provider
//! lives as long as the coordinator, because it numbers tables with OIDs that a client reads
//! in one query (pg_class) and passes back in the next (pg_attribute).

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{MemoryCatalogProvider, SchemaProvider};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::TableType;
use datafusion::execution::SessionState;
use datafusion::prelude::SessionContext;
use datafusion_pg_catalog::pg_catalog::catalog_info::CatalogInfo;
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_pg_catalog::pg_catalog::{PgCatalogSchemaProvider, PgCatalogStaticTables};
use datafusion_pg_catalog::setup_pg_catalog;
use shoal_flight::arrow_codec::decode_schema;

use crate::catalog_provider::{SHOAL_CATALOG, SHOAL_SCHEMA};
use crate::cluster::Cluster;

/// The schema Postgres clients find system tables in.
pub const PG_CATALOG_SCHEMA: &str = "pg_catalog";

/// The long-lived `pg_catalog` schema of one coordinator, built on first use (parsing its
/// static tables takes a moment, and only Postgres clients need them).
#[derive(Clone)]
pub struct PgCatalog {
    cluster: Arc<Cluster>,
    schema: Arc<OnceLock<Arc<dyn SchemaProvider>>>,
}

impl PgCatalog {
    pub fn new(cluster: Arc<Cluster>) -> Self {
        Self {
            cluster,
            schema: Arc::default(),
        }
    }

    /// The `pg_catalog` schema provider.
    pub fn schema(&self) -> Result<Arc<dyn SchemaProvider>> {
        if let Some(schema) = self.schema.get() {
            return Ok(Arc::clone(schema));
        }
        let provider: Arc<dyn SchemaProvider> = Arc::new(PgCatalogSchemaProvider::try_new(
            ShoalCatalogInfo {
                cluster: Arc::clone(&self.cluster),
            },
            Arc::new(PgCatalogStaticTables::try_new()?),
            EmptyContextProvider,
        )?);
        Ok(Arc::clone(self.schema.get_or_init(|| provider)))
    }
}

impl std::fmt::Debug for PgCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgCatalog")
    }
}

/// `state` with the Postgres functions (format_type, pg_table_is_visible, ...), the casts to
/// `regclass` and friends, and `generate_series` taking int4 bounds. They are registered
/// through a throwaway catalog: each query gets the real one.
pub fn with_pg_functions(state: SessionState) -> Result<SessionState> {
    let ctx = SessionContext::new_with_state(state);
    ctx.register_catalog(SHOAL_CATALOG, Arc::new(MemoryCatalogProvider::new()));
    setup_pg_catalog(&ctx, SHOAL_CATALOG, EmptyContextProvider).map_err(|e| *e)?;
    Ok(ctx.state())
}

/// Shoal's catalog as datafusion-pg-catalog lists it: database `shoal`, the `public` schema
/// with every table, and `pg_catalog` itself (so that it has its well-known OID 11).
#[derive(Clone)]
struct ShoalCatalogInfo {
    cluster: Arc<Cluster>,
}

impl std::fmt::Debug for ShoalCatalogInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShoalCatalogInfo")
    }
}

#[async_trait]
impl CatalogInfo for ShoalCatalogInfo {
    async fn catalog_names(&self) -> Result<Vec<String>, DataFusionError> {
        Ok(vec![SHOAL_CATALOG.to_string()])
    }

    async fn schema_names(&self, catalog: &str) -> Result<Option<Vec<String>>, DataFusionError> {
        Ok((catalog == SHOAL_CATALOG)
            .then(|| vec![SHOAL_SCHEMA.to_string(), PG_CATALOG_SCHEMA.to_string()]))
    }

    async fn table_names(
        &self,
        catalog: &str,
        schema: &str,
    ) -> Result<Option<Vec<String>>, DataFusionError> {
        if catalog != SHOAL_CATALOG {
            return Ok(None);
        }
        Ok(match schema {
            SHOAL_SCHEMA => Some(
                self.cluster
                    .catalog
                    .state()
                    .tables
                    .keys()
                    .cloned()
                    .collect(),
            ),
            PG_CATALOG_SCHEMA => Some(Vec::new()),
            _ => None,
        })
    }

    async fn table_schema(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
    ) -> Result<Option<SchemaRef>, DataFusionError> {
        if catalog != SHOAL_CATALOG || schema != SHOAL_SCHEMA {
            return Ok(None);
        }
        match self.cluster.catalog.state().tables.get(table) {
            Some(def) => Ok(Some(decode_schema(&def.schema_ipc)?)),
            None => Ok(None),
        }
    }

    async fn table_type(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
    ) -> Result<Option<TableType>, DataFusionError> {
        let exists = catalog == SHOAL_CATALOG
            && schema == SHOAL_SCHEMA
            && self.cluster.catalog.state().tables.contains_key(table);
        Ok(exists.then_some(TableType::Base))
    }
}
