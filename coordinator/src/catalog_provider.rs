//! The catalog as DataFusion sees it: catalog `shoal`, schema `public` with one `ShardTable`
//! per table of a pinned catalog version, and `pg_catalog` for Postgres clients.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::TableProvider;
use shoal_catalog::{CatalogState, ExecutorId};
use shoal_flight::arrow_codec::decode_schema;

use crate::cluster::Cluster;
use crate::executor_registry::ExecutorRegistry;
use crate::pg_catalog::{PG_CATALOG_SCHEMA, PgCatalog};
use crate::shard_table::ShardTable;

pub const SHOAL_CATALOG: &str = "shoal";
pub const SHOAL_SCHEMA: &str = "public";

#[derive(Debug)]
pub struct ShoalCatalogProvider {
    schema: Arc<ShoalSchemaProvider>,
    pg_catalog: PgCatalog,
}

impl ShoalCatalogProvider {
    pub fn new(
        state: Arc<CatalogState>,
        live: HashSet<ExecutorId>,
        cluster: Arc<Cluster>,
        pg_catalog: PgCatalog,
    ) -> Result<Self> {
        let addresses = ExecutorRegistry::addresses(&state);
        let mut tables = BTreeMap::new();
        for (name, def) in &state.tables {
            let schema = decode_schema(&def.schema_ipc)?;
            let files = state.files.get(&def.id).cloned().unwrap_or_default();
            let table = ShardTable::new(
                def.clone(),
                schema,
                files,
                addresses.clone(),
                live.clone(),
                Arc::clone(&cluster),
            );
            tables.insert(name.clone(), Arc::new(table));
        }
        Ok(Self {
            schema: Arc::new(ShoalSchemaProvider { tables }),
            pg_catalog,
        })
    }
}

impl CatalogProvider for ShoalCatalogProvider {
    fn schema_names(&self) -> Vec<String> {
        vec![SHOAL_SCHEMA.to_string(), PG_CATALOG_SCHEMA.to_string()]
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        match name {
            SHOAL_SCHEMA => Some(Arc::clone(&self.schema) as Arc<dyn SchemaProvider>),
            PG_CATALOG_SCHEMA => match self.pg_catalog.schema() {
                Ok(schema) => Some(schema),
                Err(e) => {
                    tracing::error!(error = %e, "pg_catalog is not available");
                    None
                }
            },
            _ => None,
        }
    }
}

#[derive(Debug)]
pub struct ShoalSchemaProvider {
    tables: BTreeMap<String, Arc<ShardTable>>,
}

#[async_trait]
impl SchemaProvider for ShoalSchemaProvider {
    fn table_names(&self) -> Vec<String> {
        self.tables.keys().cloned().collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        Ok(self
            .tables
            .get(name)
            .map(|t| Arc::clone(t) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.contains_key(name)
    }
}
