//! The Flight SQL front door: statements, catalog metadata, and the executors' control actions.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, SqlSupportedTransaction,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest,
    HandshakeResponse, IpcMessage, SchemaAsIpc, Ticket,
};
use datafusion::physical_plan::execute_stream;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use shoal_flight::datafusion_to_status;
use shoal_flight::executor_client::encode_batches;
use shoal_flight::wire_types::cast_batch;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

use crate::catalog_provider::{SHOAL_CATALOG, SHOAL_SCHEMA};
use crate::control_actions;
use crate::query_engine::{QueryEngine, QueryOutput};

/// A planned statement waits this long for its ticket to be redeemed.
pub const TICKET_TTL: Duration = Duration::from_secs(600);

type DoGetStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;

struct PendingQuery {
    output: QueryOutput,
    created: Instant,
}

#[derive(Clone)]
pub struct ShoalFlightSqlService {
    engine: QueryEngine,
    pending: Arc<Mutex<HashMap<String, PendingQuery>>>,
}

impl ShoalFlightSqlService {
    pub fn new(engine: QueryEngine) -> Self {
        Self {
            engine,
            pending: Default::default(),
        }
    }

    fn remember(&self, output: QueryOutput) -> String {
        let handle = uuid::Uuid::new_v4().to_string();
        let mut pending = self.pending.lock().expect("not poisoned");
        pending.retain(|_, q| q.created.elapsed() < TICKET_TTL);
        pending.insert(
            handle.clone(),
            PendingQuery {
                output,
                created: Instant::now(),
            },
        );
        handle
    }

    fn take(&self, handle: &str) -> Result<QueryOutput, Status> {
        self.pending
            .lock()
            .expect("not poisoned")
            .remove(handle)
            .map(|q| q.output)
            .ok_or_else(|| Status::not_found("unknown or expired ticket; run the statement again"))
    }
}

fn sql_info() -> &'static SqlInfoData {
    static INFO: OnceLock<SqlInfoData> = OnceLock::new();
    INFO.get_or_init(|| {
        let mut builder = SqlInfoDataBuilder::new();
        builder.append(SqlInfo::FlightSqlServerName, "Shoal");
        builder.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        builder.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
        builder.append(SqlInfo::FlightSqlServerReadOnly, false);
        builder.append(SqlInfo::FlightSqlServerSql, true);
        builder.append(SqlInfo::FlightSqlServerSubstrait, false);
        builder.append(
            SqlInfo::FlightSqlServerTransaction,
            SqlSupportedTransaction::None as i32,
        );
        builder.append(SqlInfo::FlightSqlServerCancel, false);
        builder.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
        builder.append(SqlInfo::SqlDdlCatalog, false);
        builder.append(SqlInfo::SqlDdlSchema, false);
        builder.append(SqlInfo::SqlDdlTable, true);
        builder.append(SqlInfo::SqlTransactionsSupported, false);
        builder.build().expect("static SqlInfo is valid")
    })
}

fn info_for(
    schema: &SchemaRef,
    ticket: Vec<u8>,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo, Status> {
    Ok(FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(format!("cannot encode schema: {e}")))?
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
        .with_descriptor(descriptor))
}

/// The FlightInfo of a metadata command: its ticket is the command itself.
fn metadata_info(
    schema: &SchemaRef,
    command: &impl ProstMessageExt,
    request: Request<FlightDescriptor>,
) -> Result<Response<FlightInfo>, Status> {
    let ticket = command.as_any().encode_to_vec();
    Ok(Response::new(info_for(
        schema,
        ticket,
        request.into_inner(),
    )?))
}

fn batch_stream(schema: SchemaRef, batch: Result<RecordBatch, FlightError>) -> DoGetStream {
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async move { batch }))
        .map_err(Status::from);
    Box::pin(stream)
}

/// Streams a statement's rows to the client, cast to plain (non-view) types.
fn stream_output(output: QueryOutput) -> Result<DoGetStream, Status> {
    let schema = output.schema();
    match output {
        QueryOutput::Plan { plan, task_ctx } => {
            let stream = execute_stream(plan, task_ctx).map_err(|e| datafusion_to_status(&e))?;
            let target = Arc::clone(&schema);
            let batches = stream.map(move |b| b.and_then(|b| cast_batch(&b, &target)));
            Ok(Box::pin(encode_batches(schema, batches)))
        }
        QueryOutput::Batches { batches, .. } => Ok(Box::pin(encode_batches(
            schema,
            futures::stream::iter(batches.into_iter().map(Ok)),
        ))),
    }
}

#[tonic::async_trait]
impl FlightSqlService for ShoalFlightSqlService {
    type FlightService = ShoalFlightSqlService;

    async fn do_handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        // No authentication yet: every client is accepted.
        let response = HandshakeResponse {
            protocol_version: 0,
            payload: Default::default(),
        };
        Ok(Response::new(Box::pin(futures::stream::once(async {
            Ok(response)
        }))))
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let started = Instant::now();
        let output = self.engine.run(&query.query).await.map_err(|e| {
            let status = datafusion_to_status(&e);
            warn!(sql = %query.query, code = ?status.code(), error = %status.message(), "statement failed");
            status
        })?;
        info!(sql = %query.query, elapsed_ms = started.elapsed().as_millis() as u64, "statement planned");
        let schema = output.schema();
        let handle = self.remember(output);
        let ticket = TicketStatementQuery {
            statement_handle: handle.into(),
        };
        Ok(Response::new(info_for(
            &schema,
            ticket.as_any().encode_to_vec(),
            request.into_inner(),
        )?))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let handle = String::from_utf8_lossy(&ticket.statement_handle).to_string();
        Ok(Response::new(stream_output(self.take(&handle)?)?))
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let output = self
            .engine
            .run(&command.query)
            .await
            .map_err(|e| datafusion_to_status(&e))?;
        let batches = QueryEngine::collect(output)
            .await
            .map_err(|e| datafusion_to_status(&e))?;
        Ok(affected_rows(&batches))
    }

    // Prepared statements: ADBC and JDBC send every statement this way. The handle is the SQL
    // text itself, so a handle works on any coordinator and needs no server-side state.

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let schema = self
            .engine
            .result_schema(&query.query)
            .await
            .map_err(|e| datafusion_to_status(&e))?;
        // An empty dataset schema tells JDBC the statement is an update.
        let dataset_schema = match schema {
            Some(schema) => {
                let IpcMessage(bytes) = SchemaAsIpc::new(&schema, &IpcWriteOptions::default())
                    .try_into()
                    .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
                bytes
            }
            None => Default::default(),
        };
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: query.query.into(),
            dataset_schema,
            parameter_schema: Default::default(),
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        Ok(())
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        reject_parameters(request).await?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(query.prepared_statement_handle),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let sql = handle_sql(&query.prepared_statement_handle)?;
        let statement = CommandStatementQuery {
            query: sql,
            transaction_id: None,
        };
        self.get_flight_info_statement(statement, request).await
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let sql = handle_sql(&query.prepared_statement_handle)?;
        let statement = CommandStatementUpdate {
            query: sql,
            transaction_id: None,
        };
        self.do_put_statement_update(statement, request).await
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        metadata_info(&schema, &query, request)
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let mut builder = query.into_builder();
        builder.append(SHOAL_CATALOG);
        let schema = builder.schema();
        Ok(Response::new(batch_stream(schema, builder.build())))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        metadata_info(&schema, &query, request)
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let mut builder = query.into_builder();
        builder.append(SHOAL_CATALOG, SHOAL_SCHEMA);
        let schema = builder.schema();
        Ok(Response::new(batch_stream(schema, builder.build())))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        metadata_info(&schema, &query, request)
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let state = self.engine.cluster().catalog.state();
        let mut builder = query.into_builder();
        for (name, def) in &state.tables {
            let schema = shoal_flight::arrow_codec::decode_schema(&def.schema_ipc)
                .map_err(|e| datafusion_to_status(&e))?;
            builder
                .append(SHOAL_CATALOG, SHOAL_SCHEMA, name, "TABLE", &schema)
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        let schema = builder.schema();
        Ok(Response::new(batch_stream(schema, builder.build())))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        metadata_info(&schema, &query, request)
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let mut builder = query.into_builder();
        builder.append("TABLE");
        let schema = builder.schema();
        Ok(Response::new(batch_stream(schema, builder.build())))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(sql_info()).schema();
        metadata_info(&schema, &query, request)
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let builder = query.into_builder(sql_info());
        let schema = builder.schema();
        Ok(Response::new(batch_stream(schema, builder.build())))
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let body = control_actions::handle(self.engine.cluster(), request.into_inner()).await?;
        let result = arrow_flight::Result { body: body.into() };
        Ok(Response::new(Box::pin(futures::stream::once(async {
            Ok(result)
        }))))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

fn handle_sql(handle: &[u8]) -> Result<String, Status> {
    String::from_utf8(handle.to_vec())
        .map_err(|_| Status::invalid_argument("malformed prepared statement handle"))
}

/// Parameters are not bound yet: refuse rows rather than silently ignore them.
async fn reject_parameters(request: Request<PeekableFlightDataStream>) -> Result<(), Status> {
    let mut stream = request.into_inner();
    while let Some(data) = stream.next().await {
        let data = data?;
        if !data.data_body.is_empty() {
            return Err(Status::unimplemented(
                "prepared statement parameters are not supported yet; put the values in the SQL text",
            ));
        }
    }
    Ok(())
}

/// The row count a DML statement reports.
fn affected_rows(batches: &[RecordBatch]) -> i64 {
    batches
        .iter()
        .filter(|b| b.num_columns() > 0 && b.schema().field(0).name() == "count")
        .filter_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<arrow::array::UInt64Array>()
        })
        .flat_map(|a| a.iter().flatten())
        .sum::<u64>() as i64
}
