//! The simple and extended query protocols over the query engine: statements are described
//! by planning them, parameters are decoded to the types the plan infers, rows stream as
//! they are computed, and each statement completes with Postgres' command tag.

use std::fmt::Debug;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_pg::datatypes::df::deserialize_parameters;
use arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch, into_pg_type};
use async_trait::async_trait;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::execution::SendableRecordBatchStream;
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use futures::{Sink, SinkExt, StreamExt, stream};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::response::NoticeResponse;
use pgwire::types::format::FormatOptions;
use tokio_util::sync::CancellationToken;

use super::cancels::Cancels;
use super::sqlstate::pg_error;
use super::statements::{PgStatement, StatementKind, Transaction, split};
use crate::query_engine::{QueryEngine, StatementOptions};

/// Serves the statements of every Postgres connection of one coordinator.
pub struct PgHandler {
    engine: QueryEngine,
    parser: Arc<PgQueryParser>,
    pub(super) cancels: Arc<Cancels>,
}

impl PgHandler {
    pub fn new(engine: QueryEngine) -> Self {
        Self {
            parser: Arc::new(PgQueryParser {
                engine: engine.clone(),
                compat: PostgresCompatibilityParser::new(),
            }),
            engine,
            cancels: Arc::default(),
        }
    }

    /// Runs one statement and says how to answer it.
    async fn respond<C>(
        &self,
        client: &mut C,
        statement: &PgStatement,
        parameters: Vec<ScalarValue>,
        format: &Format,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let tag = match &statement.kind {
            StatementKind::Transaction(Transaction::Begin) => {
                return Ok(Response::TransactionStart(Tag::new("BEGIN")));
            }
            StatementKind::Transaction(Transaction::Commit) => {
                return Ok(Response::TransactionEnd(Tag::new("COMMIT")));
            }
            StatementKind::Transaction(Transaction::Rollback) => {
                let warning = ErrorInfo::new(
                    "WARNING".to_string(),
                    "25P01".to_string(),
                    "Shoal has no transactions: each statement was committed when it ran, so ROLLBACK undoes nothing".to_string(),
                );
                client
                    .feed(PgWireBackendMessage::NoticeResponse(NoticeResponse::from(
                        warning,
                    )))
                    .await?;
                return Ok(Response::TransactionEnd(Tag::new("ROLLBACK")));
            }
            StatementKind::Set => return Ok(Response::Execution(Tag::new("SET"))),
            StatementKind::ShowParameter(name, value) => {
                let batch = show_batch(name, value);
                let stream = datafusion::physical_plan::memory::MemoryStream::try_new(
                    vec![batch.clone()],
                    batch.schema(),
                    None,
                )
                .map_err(|e| pg_error(&e))?;
                let response = rows_response(
                    Box::pin(stream),
                    format,
                    format_options(client),
                    CancellationToken::new(),
                )?;
                return Ok(Response::Query(response));
            }
            StatementKind::Rows(tag) | StatementKind::Count(tag) | StatementKind::Status(tag) => {
                *tag
            }
        };
        let options = StatementOptions {
            parameters: (!parameters.is_empty()).then_some(parameters),
            default_schema: None,
        };
        if let StatementKind::Rows(_) = statement.kind {
            // Only reads are cancelled: a write or DDL stopped half-way would leave its catalog
            // transaction open.
            let token = self.cancels.start(client);
            let output = tokio::select! {
                output = self.engine.run_with(&statement.sql, &options) => output,
                _ = token.cancelled() => return Err(PgWireError::QueryCanceled),
            };
            let stream = output
                .and_then(|o| o.into_stream())
                .map_err(|e| pg_error(&e))?;
            let mut response = rows_response(stream, format, format_options(client), token)?;
            response.set_command_tag(tag);
            return Ok(Response::Query(response));
        }
        let output = self
            .engine
            .run_with(&statement.sql, &options)
            .await
            .and_then(|o| o.into_stream())
            .map_err(|e| pg_error(&e))?;
        let count = drain_count(output).await?;
        Ok(Response::Execution(match (&statement.kind, tag) {
            (StatementKind::Count(_), "INSERT") => Tag::new(tag).with_oid(0).with_rows(count),
            (StatementKind::Count(_), _) => Tag::new(tag).with_rows(count),
            _ => Tag::new(tag),
        }))
    }
}

/// The row count a write reports (its `count` column); zero for statements without one.
async fn drain_count(mut output: SendableRecordBatchStream) -> PgWireResult<usize> {
    let mut count = 0;
    while let Some(batch) = output.next().await {
        let batch = batch.map_err(|e| pg_error(&e))?;
        if let Some(counts) = batch
            .columns()
            .first()
            .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
        {
            count += counts.iter().flatten().sum::<u64>() as usize;
        }
    }
    Ok(count)
}

/// Rows as Postgres data rows, encoded batch by batch as the plan yields them; `token` stops
/// the plan (dropping the stream cancels it on every executor).
fn rows_response(
    batches: SendableRecordBatchStream,
    format: &Format,
    options: Arc<FormatOptions>,
    token: CancellationToken,
) -> PgWireResult<QueryResponse> {
    let fields = Arc::new(arrow_schema_to_pg_fields(
        &batches.schema(),
        format,
        Some(options),
    )?);
    let row_fields = Arc::clone(&fields);
    let batches = stream::unfold(Some((batches, token)), |state| async move {
        let (mut batches, token) = state?;
        tokio::select! {
            biased;
            _ = token.cancelled() => Some((Err(PgWireError::QueryCanceled), None)),
            batch = batches.next() => match batch? {
                Ok(batch) => Some((Ok(batch), Some((batches, token)))),
                Err(e) => Some((Err(pg_error(&e)), None)),
            },
        }
    });
    let rows = batches.flat_map(move |batch| match batch {
        Ok(batch) => stream::iter(encode_recordbatch(Arc::clone(&row_fields), batch)).left_stream(),
        Err(e) => stream::once(async move { Err(e) }).right_stream(),
    });
    Ok(QueryResponse::new(fields, rows))
}

fn format_options<C: ClientInfo>(client: &C) -> Arc<FormatOptions> {
    Arc::new(FormatOptions::from_client_metadata(client.metadata()))
}

fn show_schema(name: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, false)]))
}

fn show_batch(name: &str, value: &str) -> RecordBatch {
    let column: ArrayRef = Arc::new(StringArray::from(vec![value]));
    RecordBatch::try_new(show_schema(name), vec![column]).expect("one text column")
}

#[async_trait]
impl SimpleQueryHandler for PgHandler {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut responses = Vec::new();
        for statement in split(&self.parser.compat, query) {
            match self
                .respond(client, &statement, Vec::new(), &Format::UnifiedText)
                .await
            {
                Ok(response) => responses.push(response),
                Err(e) => {
                    // The statements before it keep their results, as in Postgres.
                    responses.push(Response::Error(Box::new(ErrorInfo::from(e))));
                    break;
                }
            }
        }
        Ok(responses)
    }
}

#[async_trait]
impl ExtendedQueryHandler for PgHandler {
    type Statement = Arc<Prepared>;
    type QueryParser = PgQueryParser;

    fn query_parser(&self) -> Arc<PgQueryParser> {
        Arc::clone(&self.parser)
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Arc<Prepared>>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Arc<Prepared>>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = Arc::clone(&portal.statement.statement);
        let parameters = prepared.bind(portal)?;
        self.respond(
            client,
            &prepared.statement,
            parameters,
            &portal.result_column_format,
        )
        .await
    }
}

/// A parsed statement of the extended protocol, with what it takes and returns.
#[derive(Debug)]
pub struct Prepared {
    statement: PgStatement,
    /// The result columns; `None` when it returns no rows.
    result: Option<SchemaRef>,
    /// The type the plan infers for each `$n`, where it can.
    parameters: Vec<Option<DataType>>,
    /// The types the client declared in Parse, where it did.
    declared: Vec<Option<Type>>,
}

impl Prepared {
    /// The portal's parameter values, as the types the plan expects.
    fn bind(&self, portal: &Portal<Arc<Prepared>>) -> PgWireResult<Vec<ScalarValue>> {
        if portal.parameter_len() != self.parameter_count() {
            return Err(protocol_error(format!(
                "bind message supplies {} parameters, but the statement takes {}",
                portal.parameter_len(),
                self.parameter_count()
            )));
        }
        let inferred: Vec<Option<&DataType>> = self.parameters.iter().map(Option::as_ref).collect();
        let ParamValues::List(values) = deserialize_parameters(portal, &inferred)? else {
            return Ok(Vec::new());
        };
        // arrow-pg leaves out a NULL whose type neither the client nor the plan knows; put
        // those back as untyped NULLs so the others keep their positions.
        let mut missing = portal.parameter_len().saturating_sub(values.len());
        let mut decoded = values.into_iter();
        (0..portal.parameter_len())
            .map(|i| {
                let target = self.parameters.get(i).cloned().flatten();
                let untyped_null = portal.parameters[i].is_none()
                    && target.is_none()
                    && portal
                        .statement
                        .parameter_types
                        .get(i)
                        .cloned()
                        .flatten()
                        .is_none_or(|t| t == Type::UNKNOWN);
                let value = if missing > 0 && untyped_null {
                    missing -= 1;
                    ScalarValue::Null
                } else {
                    decoded.next().map(|v| v.value).ok_or_else(|| {
                        protocol_error(format!("parameter ${} could not be decoded", i + 1))
                    })?
                };
                match target {
                    Some(target) if value.data_type() != target => {
                        value.cast_to(&target).map_err(|e| pg_error(&e))
                    }
                    _ => Ok(value),
                }
            })
            .collect()
    }

    fn parameter_count(&self) -> usize {
        self.parameters.len().max(self.declared.len())
    }
}

/// An error in what the client sent (SQLSTATE 08P01, protocol_violation).
fn protocol_error(message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_string(),
        "08P01".to_string(),
        message,
    )))
}

/// Parses and describes statements for the extended protocol by planning them.
pub struct PgQueryParser {
    engine: QueryEngine,
    compat: PostgresCompatibilityParser,
}

#[async_trait]
impl QueryParser for PgQueryParser {
    type Statement = Arc<Prepared>;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Arc<Prepared>>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut statements = split(&self.compat, sql);
        if statements.len() > 1 {
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "ERROR".to_string(),
                "42601".to_string(),
                "cannot insert multiple commands into a prepared statement".to_string(),
            ))));
        }
        let Some(statement) = statements.pop() else {
            return Ok(None);
        };
        let (result, parameters) = match &statement.kind {
            kind if kind.runs_on_engine() => {
                let shape = self
                    .engine
                    .prepare(&statement.sql, None)
                    .await
                    .map_err(|e| pg_error(&e))?;
                let parameters = shape
                    .parameter_schema
                    .fields()
                    .iter()
                    .map(|f| (f.data_type() != &DataType::Null).then(|| f.data_type().clone()))
                    .collect();
                let result = match kind {
                    StatementKind::Rows(_) => shape.dataset_schema,
                    _ => None,
                };
                (result, parameters)
            }
            StatementKind::ShowParameter(name, _) => (Some(show_schema(name)), Vec::new()),
            _ => (None, Vec::new()),
        };
        Ok(Some(Arc::new(Prepared {
            statement,
            result,
            parameters,
            declared: types.to_vec(),
        })))
    }

    fn get_parameter_types(&self, prepared: &Arc<Prepared>) -> PgWireResult<Vec<Type>> {
        (0..prepared.parameter_count())
            .map(|i| {
                if let Some(declared) = prepared.declared.get(i).cloned().flatten() {
                    return Ok(declared);
                }
                match prepared.parameters.get(i).cloned().flatten() {
                    Some(inferred) => into_pg_type(&inferred),
                    None => Ok(Type::UNKNOWN),
                }
            })
            .collect()
    }

    fn get_result_schema(
        &self,
        prepared: &Arc<Prepared>,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match &prepared.result {
            Some(schema) => {
                arrow_schema_to_pg_fields(schema, format.unwrap_or(&Format::UnifiedText), None)
            }
            None => Ok(Vec::new()),
        }
    }
}
