//! Turns one SQL statement into a result: Shoal's own statements (CREATE TABLE with options,
//! CREATE TABLE AS, COPY FROM, DROP TABLE, EXPLAIN) are handled here; everything else is
//! planned by DataFusion over the pinned catalog version, distributed across the executors.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use arrow::array::{RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::CompressionType;
use datafusion::catalog::MemoryCatalogProviderList;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result, ScalarValue, TableReference, plan_err};
use datafusion::dataframe::{DataFrame, DataFrameWriteOptions};
use datafusion::execution::FunctionRegistry;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{SendableRecordBatchStream, SessionState, TaskContext};
use datafusion::logical_expr::{DdlStatement, Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{ExecutionPlan, collect, execute_stream};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{CreateTable, Statement};
use datafusion::sql::sqlparser::dialect::{GenericDialect, PostgreSqlDialect};
use datafusion::sql::sqlparser::parser::Parser;
use futures::StreamExt;
use shoal_catalog::{Command, Response, TableDef};
use shoal_flight::arrow_codec::encode_schema;
use shoal_flight::error::coded;
use shoal_flight::single_row_udf::single_row_udf;
use shoal_flight::time_sliced::time_slice;
use shoal_flight::wire_types::{cast_batch, plain_schema, plain_type};
use tonic::Code;
use tracing::info;

use crate::broadcast_joins::BroadcastJoins;
use crate::catalog_provider::{SHOAL_CATALOG, SHOAL_SCHEMA, ShoalCatalogProvider};
use crate::checked_scalar_subqueries::CheckedScalarSubqueries;
use crate::cluster::{Cluster, catalog_error};
use crate::co_located_joins::CoLocatedJoins;
use crate::copy_from::CopyFrom;
use crate::distributed::{
    describe_tasks, display_distributed_plan, distributed_session, plan_with_metrics,
};
use crate::pg_catalog::{PgCatalog, with_pg_functions};
use crate::shard_write_sink::collect_garbage;
use crate::stage_metrics;
use crate::table_options::TableOptions;

/// How to run one statement: its bound parameter values and the session's default schema.
#[derive(Debug, Clone, Default)]
pub struct StatementOptions {
    /// Values for `$1..$n`, in order.
    pub parameters: Option<Vec<ScalarValue>>,
    /// The schema unqualified names resolve in (default: `public`).
    pub default_schema: Option<String>,
}

/// What a prepared statement will take and return.
pub struct PreparedShape {
    /// The result schema; `None` for statements that change something and return a count.
    pub dataset_schema: Option<SchemaRef>,
    /// One field per parameter, named `$1..$n`; `Null` where the type cannot be inferred.
    pub parameter_schema: SchemaRef,
}

/// What a statement produced.
pub enum QueryOutput {
    /// A plan to run when the client redeems its ticket.
    Plan {
        plan: Arc<dyn ExecutionPlan>,
        task_ctx: Arc<TaskContext>,
    },
    /// Rows already computed (DDL, writes, EXPLAIN).
    Batches {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    },
}

impl QueryOutput {
    /// The result schema as clients see it (no view types).
    pub fn schema(&self) -> SchemaRef {
        match self {
            QueryOutput::Plan { plan, .. } => plain_schema(&plan.schema()),
            QueryOutput::Batches { schema, .. } => Arc::clone(schema),
        }
    }

    /// The rows, running the plan if there is one, cast to the plain types of [`Self::schema`].
    pub fn into_stream(self) -> Result<SendableRecordBatchStream> {
        let schema = self.schema();
        match self {
            QueryOutput::Plan { plan, task_ctx } => {
                let stream = execute_stream(plan, task_ctx)?;
                let target = Arc::clone(&schema);
                Ok(Box::pin(RecordBatchStreamAdapter::new(
                    schema,
                    stream.map(move |b| b.and_then(|b| cast_batch(&b, &target))),
                )))
            }
            QueryOutput::Batches { batches, .. } => {
                Ok(Box::pin(MemoryStream::try_new(batches, schema, None)?))
            }
        }
    }
}

#[derive(Clone)]
pub struct QueryEngine {
    cluster: Arc<Cluster>,
    runtime: Arc<RuntimeEnv>,
    shuffle_compression: Option<CompressionType>,
    base_state: Arc<Mutex<Option<BaseState>>>,
    pg_catalog: PgCatalog,
}

/// A session state with every function and rule registered, for one set of live executors.
/// Building it registers hundreds of functions, a large share of a point lookup's time, so
/// queries clone it instead and give the clone its own catalog list.
struct BaseState {
    executor_addresses: Vec<String>,
    state: SessionState,
}

impl QueryEngine {
    pub fn new(
        cluster: Arc<Cluster>,
        runtime: Arc<RuntimeEnv>,
        shuffle_compression: Option<CompressionType>,
    ) -> Self {
        Self {
            pg_catalog: PgCatalog::new(Arc::clone(&cluster)),
            cluster,
            runtime,
            shuffle_compression,
            base_state: Arc::default(),
        }
    }

    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// A session over the catalog's current version and the live executors. The version is
    /// linearizable: it holds every catalog change acknowledged anywhere before this call.
    pub async fn session(&self) -> Result<SessionContext> {
        self.session_in(None).await
    }

    /// [`Self::session`] with unqualified names resolving in `default_schema`.
    async fn session_in(&self, default_schema: Option<&str>) -> Result<SessionContext> {
        let state = self
            .cluster
            .catalog
            .linearizable_state()
            .await
            .map_err(catalog_error)?;
        let live = self.cluster.executors.live(&state);
        let addresses: Vec<String> = live.iter().map(|e| e.address.clone()).collect();
        let mut session_state = self.base_state(addresses)?;
        // The clone shares its base's catalog list; a fresh one keeps this query's pinned
        // catalog version away from every other query's.
        session_state.register_catalog_list(Arc::new(MemoryCatalogProviderList::new()));
        if let Some(schema) = default_schema {
            if !KNOWN_SCHEMAS.contains(&schema) {
                return Err(coded(
                    Code::NotFound,
                    format!(
                        "schema '{schema}' does not exist; schemas are {}",
                        KNOWN_SCHEMAS.join(", ")
                    ),
                ));
            }
            session_state
                .config_mut()
                .options_mut()
                .catalog
                .default_schema = schema.to_string();
        }
        let ctx = SessionContext::new_with_state(session_state);
        let live_ids: HashSet<u64> = live.iter().map(|e| e.id).collect();
        ctx.register_catalog(
            SHOAL_CATALOG,
            Arc::new(ShoalCatalogProvider::new(
                state,
                live_ids,
                Arc::clone(&self.cluster),
                self.pg_catalog.clone(),
            )?),
        );
        Ok(ctx)
    }

    /// A copy of the base state for `executor_addresses`, built once per set of executors.
    fn base_state(&self, executor_addresses: Vec<String>) -> Result<SessionState> {
        let mut cached = self.base_state.lock().expect("base state lock poisoned");
        if let Some(base) = cached
            .as_ref()
            .filter(|b| b.executor_addresses == executor_addresses)
        {
            return Ok(base.state.clone());
        }
        let state = with_shoal_functions(with_pg_functions(
            distributed_session(
                self.state_builder(executor_addresses.len()),
                &executor_addresses,
                self.shuffle_compression,
            )?
            .build(),
        )?)?;
        *cached = Some(BaseState {
            executor_addresses,
            state: state.clone(),
        });
        Ok(state)
    }

    /// A session builder for plans that run on `executors` executors.
    fn state_builder(&self, executors: usize) -> SessionStateBuilder {
        let mut config = SessionConfig::new()
            .with_default_catalog_and_schema(SHOAL_CATALOG, SHOAL_SCHEMA)
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(true);
        let options = config.options_mut();
        options.sql_parser.map_string_types_to_utf8view = false;
        // Keep a scan's bucket-per-partition layout even when there are fewer buckets than
        // cores, so joins of co-located tables stay shuffle-free.
        options.optimizer.preserve_file_partitions = 1;
        // A partitioned join's dynamic filter routes rows by `hash % partitions of this task`,
        // which is not the bucket of a row once a stage's buckets are split across tasks.
        options.optimizer.enable_join_dynamic_filter_pushdown = false;
        SessionStateBuilder::new()
            .with_default_features()
            .with_config(config)
            .with_analyzer_rule(Arc::new(CheckedScalarSubqueries))
            .with_physical_optimizer_rules(physical_optimizer_rules(executors))
            .with_runtime_env(Arc::clone(&self.runtime))
    }

    /// The state that turns `plan` into a physical plan: the distributed one, except for
    /// recursive CTEs, which run on the coordinator (their recursive term re-reads its inputs
    /// on every iteration, which a distributed plan's network stages, read once, cannot serve;
    /// their scans still read the shards from the executors).
    fn physical_planner(&self, distributed: SessionState, plan: &LogicalPlan) -> SessionState {
        let mut recursive = false;
        let _ = plan.apply_with_subqueries(|node| {
            recursive |= matches!(node, LogicalPlan::RecursiveQuery(_));
            Ok(if recursive {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        });
        if recursive {
            with_shoal_functions(self.state_builder(1).build())
                .expect("registering a function into a new session cannot fail")
        } else {
            distributed
        }
    }

    /// Runs (or plans, for queries) one SQL statement.
    pub async fn run(&self, sql: &str) -> Result<QueryOutput> {
        self.run_with(sql, &StatementOptions::default()).await
    }

    /// [`Self::run`] with bound parameters and a session's default schema.
    pub async fn run_with(&self, sql: &str, options: &StatementOptions) -> Result<QueryOutput> {
        let ctx = self.session_in(options.default_schema.as_deref()).await?;
        let parameters = options.parameters.clone();
        if let Some(copy) = parse_copy_from(sql) {
            refuse_parameters(&parameters, "COPY")?;
            return self.copy_from(&ctx, copy?).await;
        }
        let statement = single_statement(sql)?;
        let planned_by_datafusion = matches!(
            &statement,
            DFStatement::Statement(s) if !matches!(**s, Statement::CreateTable(_))
        );
        if !planned_by_datafusion {
            refuse_parameters(&parameters, "CREATE TABLE, EXPLAIN and COPY")?;
        }
        match statement {
            DFStatement::Statement(stmt) => match *stmt {
                Statement::CreateTable(create) => self.create_table(&ctx, create).await,
                other => {
                    self.run_planned(&ctx, DFStatement::Statement(Box::new(other)), parameters)
                        .await
                }
            },
            DFStatement::Explain(explain) if !explain.options.analyze => {
                self.explain(&ctx, *explain.statement, explain.options.verbose)
                    .await
            }
            DFStatement::Explain(explain) => {
                self.explain_analyze(&ctx, *explain.statement, explain.options.verbose)
                    .await
            }
            DFStatement::CreateExternalTable(_) => plan_err!(
                "CREATE EXTERNAL TABLE is not supported; use CREATE TABLE and COPY t FROM 'path'"
            ),
            DFStatement::CopyTo(_) => plan_err!("COPY ... TO is not supported yet"),
            other => self.run_planned(&ctx, other, None).await,
        }
    }

    /// The result and parameter schemas of a statement, planned but not run. Statements that
    /// change something have no result schema: they run only when executed.
    pub async fn prepare(&self, sql: &str, default_schema: Option<&str>) -> Result<PreparedShape> {
        let no_parameters = || Arc::new(Schema::empty());
        if parse_copy_from(sql).is_some() {
            return Ok(PreparedShape {
                dataset_schema: None,
                parameter_schema: no_parameters(),
            });
        }
        let ctx = self.session_in(default_schema).await?;
        let statement = single_statement(sql)?;
        match &statement {
            DFStatement::Statement(stmt) if matches!(**stmt, Statement::CreateTable(_)) => {
                return Ok(PreparedShape {
                    dataset_schema: None,
                    parameter_schema: no_parameters(),
                });
            }
            DFStatement::Explain(explain) if !explain.options.analyze => {
                return Ok(PreparedShape {
                    dataset_schema: Some(explain_schema()),
                    parameter_schema: no_parameters(),
                });
            }
            _ => {}
        }
        let plan = ctx.state().statement_to_plan(statement).await?;
        let parameter_schema = parameter_schema(&plan)?;
        let dataset_schema = match plan {
            LogicalPlan::Ddl(_) | LogicalPlan::Dml(_) | LogicalPlan::Statement(_) => None,
            plan => Some(plain_schema(plan.schema().as_arrow())),
        };
        Ok(PreparedShape {
            dataset_schema,
            parameter_schema,
        })
    }

    /// Runs `INSERT INTO t VALUES ($1, ...)` once per row of `rows` as one write: every
    /// row's bound VALUES row goes into a single VALUES list, so a batch of N rows (JDBC
    /// batches, ADBC's `executemany`) is one commit and one file per bucket, not N. `None`
    /// when the statement is not such an insert; the caller then runs it row by row.
    pub async fn insert_rows(
        &self,
        sql: &str,
        rows: &[Vec<ScalarValue>],
        default_schema: Option<&str>,
    ) -> Result<Option<QueryOutput>> {
        let statement = single_statement(sql)?;
        let is_insert =
            matches!(&statement, DFStatement::Statement(s) if matches!(**s, Statement::Insert(_)));
        if !is_insert || rows.is_empty() {
            return Ok(None);
        }
        let ctx = self.session_in(default_schema).await?;
        let state = ctx.state();
        let plan = state.statement_to_plan(statement).await?;
        if !matches!(plan, LogicalPlan::Dml(_)) {
            return Ok(None);
        }
        let mut values = Vec::with_capacity(rows.len());
        let mut first_bound = None;
        for row in rows {
            let bound = plan.clone().with_param_values(row.clone())?;
            match only_values_row(&bound) {
                Some(row) => values.push(row),
                None => return Ok(None),
            }
            first_bound.get_or_insert(bound);
        }
        let plan = first_bound
            .expect("rows is not empty")
            .transform_up(|node| match node {
                // Built anew so that a column is nullable when any row has a NULL in it, and
                // the nodes above recomputed to match.
                LogicalPlan::Values(_) => LogicalPlanBuilder::values(std::mem::take(&mut values))?
                    .build()
                    .map(Transformed::yes),
                other => other.recompute_schema().map(Transformed::yes),
            })?
            .data;
        let state = self.physical_planner(state, &plan);
        let batches = DataFrame::new(state, plan).collect().await?;
        Ok(Some(QueryOutput::Batches {
            schema: count_schema(),
            batches: normalize_count(batches)?,
        }))
    }

    async fn run_planned(
        &self,
        ctx: &SessionContext,
        statement: DFStatement,
        parameters: Option<Vec<ScalarValue>>,
    ) -> Result<QueryOutput> {
        let state = ctx.state();
        let mut plan = state.statement_to_plan(statement).await?;
        if let Some(values) = parameters {
            plan = plan.with_param_values(values)?;
        }
        match plan {
            LogicalPlan::Ddl(DdlStatement::DropTable(drop)) => {
                self.drop_table(&drop.name, drop.if_exists).await
            }
            LogicalPlan::Ddl(ddl) => plan_err!("{} is not supported", ddl.name()),
            LogicalPlan::Statement(s) => plan_err!("{} is not supported", s.name()),
            LogicalPlan::Dml(_) => {
                let state = self.physical_planner(state, &plan);
                let df = DataFrame::new(state, plan);
                let batches = df.collect().await?;
                Ok(QueryOutput::Batches {
                    schema: count_schema(),
                    batches: normalize_count(batches)?,
                })
            }
            plan => {
                let state = self.physical_planner(state, &plan);
                let physical = state.create_physical_plan(&plan).await?;
                // Sliced so that whoever drops the result stops the coordinator's part too
                // (executors slice the stages they run).
                Ok(QueryOutput::Plan {
                    plan: time_slice(physical)?,
                    task_ctx: state.task_ctx(),
                })
            }
        }
    }

    async fn create_table(
        &self,
        ctx: &SessionContext,
        mut create: CreateTable,
    ) -> Result<QueryOutput> {
        let options = TableOptions::take_from(&mut create.table_options)?;
        let if_not_exists = create.if_not_exists;
        let state = ctx.state();
        let plan = state
            .statement_to_plan(DFStatement::Statement(Box::new(Statement::CreateTable(
                create,
            ))))
            .await?;
        let LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(cmd)) = plan else {
            return plan_err!("unsupported CREATE TABLE form");
        };
        let name = table_name(&cmd.name)?;
        let schema = plain_schema(cmd.input.schema().as_arrow());
        let is_ctas = !matches!(cmd.input.as_ref(), LogicalPlan::EmptyRelation(_));
        let table = self.table_def(&name, &schema, &options)?;
        let (_, created) = self.propose_table(table, if_not_exists).await?;
        info!(table = %name, created, "create table");
        if !is_ctas || !created {
            return Ok(status("CREATE TABLE"));
        }
        // CREATE TABLE AS: load through the write path; if that fails the table goes away too.
        let insert = async {
            let ctx = self.session().await?;
            let df = DataFrame::new(ctx.state(), cmd.input.as_ref().clone());
            let batches = df.write_table(&name, DataFrameWriteOptions::new()).await?;
            normalize_count(batches)
        };
        match insert.await {
            Ok(batches) => Ok(QueryOutput::Batches {
                schema: count_schema(),
                batches,
            }),
            Err(e) => {
                let _ = self
                    .drop_table(&TableReference::bare(name.clone()), true)
                    .await;
                Err(e)
            }
        }
    }

    /// Creates `table` in the catalog; returns its id and whether it was created (false when
    /// `if_not_exists` found it already there).
    pub(crate) async fn propose_table(
        &self,
        table: TableDef,
        if_not_exists: bool,
    ) -> Result<(u64, bool)> {
        let response = self
            .cluster
            .propose(Command::CreateTable {
                table,
                if_not_exists,
            })
            .await?;
        let Response::TableCreated { id, created } = response else {
            return plan_err!("unexpected catalog response to CREATE TABLE: {response:?}");
        };
        Ok((id, created))
    }

    /// The catalog entry for a new table: options, defaults, and placement on live executors.
    pub(crate) fn table_def(
        &self,
        name: &str,
        schema: &SchemaRef,
        options: &TableOptions,
    ) -> Result<TableDef> {
        let state = self.cluster.catalog.state();
        let live = self.cluster.executors.live(&state);
        if live.is_empty() {
            return Err(coded(
                Code::Unavailable,
                "no executors are available to hold the table",
            ));
        }
        for field in schema.fields() {
            if let Some(unstorable) = unstorable_type(field.data_type()) {
                return plan_err!(
                    "column '{}' has type {unstorable}, which Parquet shards cannot hold; store it as another type (e.g. a string or the parts as integers)",
                    field.name()
                );
            }
        }
        if let Some(column) = &options.distribution
            && schema.index_of(column).is_err()
        {
            return plan_err!("distribution column '{column}' is not a column of table '{name}'");
        }
        let n = live.len() as u32;
        let (shard_count, replication) = match &options.distribution {
            Some(_) => (
                options.shards.unwrap_or(n),
                options.replication.unwrap_or(n.min(2)),
            ),
            None => {
                if options.shards.is_some_and(|s| s != 1) {
                    return plan_err!(
                        "a table without a distribution column has one shard; add distribution = 'column'"
                    );
                }
                (1, options.replication.unwrap_or(n))
            }
        };
        if replication > n {
            return plan_err!("replication {replication} is more than the {n} available executors");
        }
        let ids: Vec<u64> = live.iter().map(|e| e.id).collect();
        let placement = (0..shard_count as usize)
            .map(|bucket| {
                (0..replication as usize)
                    .map(|k| ids[(bucket + k) % ids.len()])
                    .collect()
            })
            .collect();
        Ok(TableDef {
            id: 0,
            name: name.to_string(),
            schema_ipc: encode_schema(schema),
            distribution: options.distribution.clone(),
            shard_count,
            replication,
            placement,
            created_index: 0,
        })
    }

    async fn drop_table(&self, name: &TableReference, if_exists: bool) -> Result<QueryOutput> {
        self.drop_table_named(table_name(name)?, if_exists).await?;
        Ok(status("DROP TABLE"))
    }

    /// Drops `name` and removes its shard files.
    pub(crate) async fn drop_table_named(&self, name: String, if_exists: bool) -> Result<()> {
        let response = self
            .cluster
            .propose(Command::DropTable { name, if_exists })
            .await?;
        if let Response::TableDropped { files, .. } = response {
            collect_garbage(&self.cluster, files).await;
        }
        Ok(())
    }

    async fn copy_from(&self, ctx: &SessionContext, copy: CopyFrom) -> Result<QueryOutput> {
        if !ctx.table_exist(copy.table.as_str())? {
            return Err(coded(
                Code::NotFound,
                format!("table '{}' does not exist", copy.table),
            ));
        }
        let provider = ctx.table_provider(copy.table.as_str()).await?;
        let df = copy.read(ctx, &provider.schema()).await?;
        let batches = df
            .write_table(&copy.table, DataFrameWriteOptions::new())
            .await?;
        Ok(QueryOutput::Batches {
            schema: count_schema(),
            batches: normalize_count(batches)?,
        })
    }

    async fn explain(
        &self,
        ctx: &SessionContext,
        statement: DFStatement,
        verbose: bool,
    ) -> Result<QueryOutput> {
        let (state, logical, physical) = self.plan_statement(ctx, statement).await?;
        let mut text = display_distributed_plan(&physical, false);
        let tasks = describe_tasks(&physical, state.config());
        if !tasks.is_empty() {
            text.push_str("\nTasks:\n");
            for line in tasks {
                text.push_str("  ");
                text.push_str(&line);
                text.push('\n');
            }
        }
        let mut rows = vec![("physical_plan", text)];
        if verbose {
            rows.insert(0, ("logical_plan", logical.display_indent().to_string()));
        }
        explain_output(rows)
    }

    /// A statement's logical plan and its physical plan, with the state that planned it.
    async fn plan_statement(
        &self,
        ctx: &SessionContext,
        statement: DFStatement,
    ) -> Result<(SessionState, LogicalPlan, Arc<dyn ExecutionPlan>)> {
        let state: SessionState = ctx.state();
        let logical = state.statement_to_plan(statement).await?;
        let state = self.physical_planner(state, &logical);
        let physical = state.create_physical_plan(&logical).await?;
        Ok((state, logical, physical))
    }

    /// Runs the statement, then shows its plan with metrics and, per stage and task, rows,
    /// bytes, network bytes, CPU time, spill, and local versus remote shard reads.
    async fn explain_analyze(
        &self,
        ctx: &SessionContext,
        statement: DFStatement,
        verbose: bool,
    ) -> Result<QueryOutput> {
        let (state, _, physical) = self.plan_statement(ctx, statement).await?;
        let started = std::time::Instant::now();
        let mut stream = execute_stream(Arc::clone(&physical), state.task_ctx())?;
        let mut rows = 0;
        while let Some(batch) = stream.next().await {
            rows += batch?.num_rows();
        }
        drop(stream);
        let elapsed = started.elapsed();
        let per_task = plan_with_metrics(Arc::clone(&physical), true).await?;
        let shown = if verbose {
            Arc::clone(&per_task)
        } else {
            plan_with_metrics(physical, false).await?
        };
        let summary = format!(
            "{rows} rows in {:.1} ms\n{}",
            elapsed.as_secs_f64() * 1000.0,
            stage_metrics::render(&stage_metrics::collect(&per_task))
        );
        explain_output(vec![
            ("Plan with Metrics", display_distributed_plan(&shown, true)),
            ("Stages", summary),
        ])
    }

    /// Runs a plan to completion and returns its batches (used for eager statements and tests).
    pub async fn collect(output: QueryOutput) -> Result<Vec<RecordBatch>> {
        match output {
            QueryOutput::Plan { plan, task_ctx } => collect(plan, task_ctx).await,
            QueryOutput::Batches { batches, .. } => Ok(batches),
        }
    }
}

/// The schemas of the `shoal` catalog: tables live in `public`, DataFusion's views of the
/// catalog in `information_schema`.
pub const KNOWN_SCHEMAS: [&str; 2] = [SHOAL_SCHEMA, "information_schema"];

/// The one statement in `sql`.
/// The row of the plan's only VALUES node, when it has one node of one row.
fn only_values_row(plan: &LogicalPlan) -> Option<Vec<Expr>> {
    let mut found = Vec::new();
    let _ = plan.apply(|node| {
        if let LogicalPlan::Values(v) = node {
            found.push(v.values.clone());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    match found.as_mut_slice() {
        [rows] if rows.len() == 1 => rows.pop(),
        _ => None,
    }
}

fn single_statement(sql: &str) -> Result<DFStatement> {
    let mut statements = DFParser::parse_sql_with_dialect(sql, &GenericDialect {})?;
    match (statements.pop_front(), statements.is_empty()) {
        (Some(s), true) => Ok(s),
        (None, _) => plan_err!("empty statement"),
        (Some(_), false) => plan_err!("send one statement at a time"),
    }
}

fn refuse_parameters(parameters: &Option<Vec<ScalarValue>>, kind: &str) -> Result<()> {
    match parameters {
        Some(values) if !values.is_empty() => {
            plan_err!("{kind} statements take no parameters; put the values in the SQL text")
        }
        _ => Ok(()),
    }
}

/// One field per placeholder of `plan`, `$1..$n` in order, typed where DataFusion can infer it.
fn parameter_schema(plan: &LogicalPlan) -> Result<SchemaRef> {
    let mut fields: Vec<(usize, Field)> = Vec::new();
    for (name, field) in plan.get_parameter_fields()? {
        let Some(position) = name.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) else {
            return plan_err!("named parameter '{name}' is not supported; use $1, $2, ... or ?");
        };
        let data_type = field.map_or(DataType::Null, |f| plain_type(f.data_type()));
        fields.push((position, Field::new(&name, data_type, true)));
    }
    fields.sort_by_key(|(position, _)| *position);
    if let Some(gap) = fields.iter().enumerate().find(|(i, (p, _))| *p != i + 1) {
        return plan_err!("parameter ${} is used but ${} is not", gap.1.0, gap.0 + 1);
    }
    Ok(Arc::new(Schema::new(
        fields.into_iter().map(|(_, f)| f).collect::<Vec<_>>(),
    )))
}

/// The part of `data_type` the Parquet writer cannot store, if any.
fn unstorable_type(data_type: &DataType) -> Option<&DataType> {
    match data_type {
        DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano) => Some(data_type),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            unstorable_type(f.data_type())
        }
        DataType::Struct(fields) => fields.iter().find_map(|f| unstorable_type(f.data_type())),
        DataType::Map(f, _) => unstorable_type(f.data_type()),
        _ => None,
    }
}

/// `state` with the functions Shoal's own rewrites call (executors register them too).
fn with_shoal_functions(mut state: SessionState) -> Result<SessionState> {
    state.register_udf(single_row_udf())?;
    Ok(state)
}

/// DataFusion's physical optimizer rules with [`BroadcastJoins`] then [`CoLocatedJoins`] right
/// after `JoinSelection`, so that the distribution rules which follow see the joins that
/// broadcast and the ones that join partition by partition.
fn physical_optimizer_rules(executors: usize) -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = PhysicalOptimizer::new().rules;
    let at = rules
        .iter()
        .position(|r| r.name() == "join_selection")
        .map_or(rules.len(), |i| i + 1);
    rules.insert(at, Arc::new(CoLocatedJoins));
    rules.insert(at, Arc::new(BroadcastJoins::new(executors)));
    rules
}

fn parse_copy_from(sql: &str) -> Option<Result<CopyFrom>> {
    let trimmed = sql.trim_start();
    if !trimmed
        .get(..4)
        .is_some_and(|s| s.eq_ignore_ascii_case("copy"))
    {
        return None;
    }
    let statements = match Parser::parse_sql(&PostgreSqlDialect {}, sql) {
        Ok(s) => s,
        Err(_) => return None, // not Postgres COPY FROM syntax; DataFusion will report the error
    };
    statements.first().and_then(CopyFrom::from_statement)
}

fn table_name(name: &TableReference) -> Result<String> {
    match name {
        TableReference::Bare { table } => Ok(table.to_string()),
        TableReference::Partial { schema, table } if schema.as_ref() == SHOAL_SCHEMA => {
            Ok(table.to_string())
        }
        TableReference::Full {
            catalog,
            schema,
            table,
        } if catalog.as_ref() == SHOAL_CATALOG && schema.as_ref() == SHOAL_SCHEMA => {
            Ok(table.to_string())
        }
        other => plan_err!("tables live in {SHOAL_CATALOG}.{SHOAL_SCHEMA}; '{other}' is elsewhere"),
    }
}

fn explain_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("plan_type", DataType::Utf8, false),
        Field::new("plan", DataType::Utf8, false),
    ]))
}

/// EXPLAIN's result: one (plan_type, plan) row per entry.
fn explain_output(rows: Vec<(&str, String)>) -> Result<QueryOutput> {
    let schema = explain_schema();
    let (types, plans): (Vec<&str>, Vec<String>) = rows.into_iter().unzip();
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(types)),
            Arc::new(StringArray::from(plans)),
        ],
    )?;
    Ok(QueryOutput::Batches {
        schema,
        batches: vec![batch],
    })
}

fn count_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]))
}

/// DataFusion's DML plans report `count`; make it one non-null UInt64 row.
fn normalize_count(batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    let mut total = 0u64;
    for batch in &batches {
        if batch.num_columns() == 0 {
            continue;
        }
        let column = arrow::compute::cast(batch.column(0), &DataType::UInt64)?;
        let values = column
            .as_any()
            .downcast_ref::<UInt64Array>()
            .ok_or_else(|| DataFusionError::Internal("count is not an integer".into()))?;
        total += values.iter().flatten().sum::<u64>();
    }
    Ok(vec![RecordBatch::try_new(
        count_schema(),
        vec![Arc::new(UInt64Array::from(vec![total]))],
    )?])
}

fn status(text: &str) -> QueryOutput {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "status",
        DataType::Utf8,
        false,
    )]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(StringArray::from(vec![text]))],
    )
    .expect("static schema");
    QueryOutput::Batches {
        schema,
        batches: vec![batch],
    }
}
