//! The Flight SQL front door: statements, prepared statements, bulk ingest, catalog metadata,
//! sessions, cancellation, and the executors' control actions.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any,
    CommandGetCatalogs, CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys,
    CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, CommandGetXdbcTypeInfo, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementIngest, CommandStatementQuery,
    CommandStatementUpdate, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    TableExistsOption, TableNotExistOption, TicketStatementQuery,
};
use arrow_flight::{
    Action, ActionType, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus,
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use datafusion::common::TableReference;
use futures::{Stream, TryStreamExt};
use prost::Message;
use shoal_flight::datafusion_to_status;
use shoal_flight::executor_client::encode_batches;
use shoal_flight::rpc::{self, ExportTicket};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

use super::auth::FlightAuth;
use super::exports::{Exports, ResultEndpoints};
use super::metadata::{empty, foreign_keys_schema, primary_keys_schema, sql_info, xdbc_type_info};
use super::placeholders::number_placeholders;
use super::prepared::{PreparedStatement, read_parameters, row_values};
use super::sessions::{
    CLOSE_SESSION, GET_SESSION_OPTIONS, SET_SESSION_OPTIONS, Sessions, SetSessionOptionsRequest,
};
use super::tickets::{DoGetStream, TICKET_TTL, Tickets, expires_after};
use super::uploads::open_upload;
use crate::bulk_ingest::{IngestRequest, WhenExists, WhenMissing};
use crate::catalog_provider::{SHOAL_CATALOG, SHOAL_SCHEMA};
use crate::control_actions;
use crate::query_engine::{KNOWN_SCHEMAS, QueryEngine, QueryOutput, StatementOptions};
use crate::table_options::TableOptions;

const CANCEL_FLIGHT_INFO: &str = "CancelFlightInfo";

#[derive(Clone)]
pub struct ShoalFlightSqlService {
    engine: QueryEngine,
    tickets: Tickets,
    sessions: Sessions,
    exports: Exports,
    /// This coordinator's Flight address, where executors report on exported results.
    flight_address: String,
    auth: FlightAuth,
}

impl ShoalFlightSqlService {
    pub fn new(engine: QueryEngine) -> Self {
        Self {
            engine,
            tickets: Tickets::default(),
            sessions: Sessions::default(),
            exports: Exports::default(),
            flight_address: String::new(),
            auth: FlightAuth::open(),
        }
    }

    /// Requires clients to authenticate as `auth` says.
    pub fn with_auth(mut self, auth: FlightAuth) -> Self {
        self.auth = auth;
        self
    }

    pub fn auth(&self) -> &FlightAuth {
        &self.auth
    }

    /// Sets the Flight address executors reach this coordinator on (needed for results read
    /// from the executors).
    pub fn with_flight_address(mut self, address: impl Into<String>) -> Self {
        self.flight_address = address.into();
        self
    }

    /// Where the caller wants results read from: its call header, else its session's option.
    fn endpoints(&self, metadata: &MetadataMap) -> Result<ResultEndpoints, Status> {
        Ok(ResultEndpoints::from_header(metadata)?
            .unwrap_or_else(|| self.sessions.of(metadata).endpoints))
    }

    fn options(&self, metadata: &MetadataMap) -> StatementOptions {
        StatementOptions {
            parameters: None,
            default_schema: self.sessions.of(metadata).schema,
        }
    }

    /// Plans (or, for statements that change something, runs) `sql` and answers with one
    /// endpoint whose ticket this coordinator redeems, or, when the caller asked for executor
    /// endpoints and the query allows, one endpoint per task of its final stage.
    async fn statement_info(
        &self,
        sql: &str,
        options: &StatementOptions,
        endpoints: ResultEndpoints,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Status> {
        let started = std::time::Instant::now();
        let output = self.engine.run_with(sql, options).await.map_err(|e| {
            let status = datafusion_to_status(&e);
            warn!(sql, code = ?status.code(), error = %status.message(), "statement failed");
            status
        })?;
        info!(
            sql,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "statement planned"
        );
        let schema = output.schema();
        let exported = match (&output, endpoints) {
            (QueryOutput::Plan { plan, task_ctx }, ResultEndpoints::Executors) => {
                self.exports
                    .start(plan, Arc::clone(task_ctx), &self.flight_address)
                    .await?
            }
            _ => None,
        };
        let endpoints = match exported {
            Some(endpoints) => {
                info!(
                    sql,
                    endpoints = endpoints.len(),
                    "result exported to the executors"
                );
                endpoints
            }
            None => {
                let ticket = TicketStatementQuery {
                    statement_handle: self.tickets.remember(output).into(),
                };
                vec![
                    FlightEndpoint::new()
                        .with_ticket(Ticket::new(ticket.as_any().encode_to_vec()))
                        .with_expiration_time(expires_after(TICKET_TTL)),
                ]
            }
        };
        let info = FlightInfo::new()
            .try_with_schema(&schema)
            .map_err(|e| Status::internal(format!("cannot encode schema: {e}")))?
            .with_descriptor(descriptor);
        Ok(endpoints.into_iter().fold(info, FlightInfo::with_endpoint))
    }

    /// Runs a statement that changes something and returns the rows it affected.
    async fn update(&self, sql: &str, options: &StatementOptions) -> Result<i64, Status> {
        let output = self
            .engine
            .run_with(sql, options)
            .await
            .map_err(|e| datafusion_to_status(&e))?;
        let batches = QueryEngine::collect(output)
            .await
            .map_err(|e| datafusion_to_status(&e))?;
        Ok(affected_rows(&batches))
    }

    /// The result schema of the statement or metadata command `descriptor` names.
    pub async fn schema_of(&self, request: Request<FlightDescriptor>) -> Result<SchemaRef, Status> {
        let default_schema = self.sessions.of(request.metadata()).schema;
        let any = Any::decode(&*request.get_ref().cmd)
            .map_err(|_| Status::invalid_argument("the descriptor holds no Flight SQL command"))?;
        let sql = if let Some(query) = unpack::<CommandStatementQuery>(&any)? {
            query.query
        } else if let Some(query) = unpack::<CommandPreparedStatementQuery>(&any)? {
            PreparedStatement::decode(&query.prepared_statement_handle)?.sql
        } else {
            // Metadata commands: their answer's schema does not depend on the catalog.
            let info = self.get_flight_info(request).await?.into_inner();
            return Ok(Arc::new(
                Schema::try_from(info).map_err(|e| Status::internal(e.to_string()))?,
            ));
        };
        let shape = self
            .engine
            .prepare(&sql, default_schema.as_deref())
            .await
            .map_err(|e| datafusion_to_status(&e))?;
        Ok(shape
            .dataset_schema
            .unwrap_or_else(|| Arc::new(Schema::empty())))
    }

    /// Cancels every statement whose ticket is in `info`.
    fn cancel_info(&self, info: &FlightInfo) -> bool {
        let mut cancelled = false;
        for endpoint in &info.endpoint {
            let Some(ticket) = &endpoint.ticket else {
                continue;
            };
            if let Some(Ok(export)) =
                rpc::decode::<ExportTicket>(rpc::EXPORT_TICKET_PREFIX, &ticket.ticket)
            {
                cancelled |= self.exports.cancel(&export.export_id);
            } else if let Ok(any) = Any::decode(&*ticket.ticket)
                && let Ok(Some(query)) = any.unpack::<TicketStatementQuery>()
            {
                cancelled |= self
                    .tickets
                    .cancel(&String::from_utf8_lossy(&query.statement_handle));
            }
        }
        cancelled
    }
}

/// Decodes an action body, naming the message on failure.
fn decode_body<M: Message + Default>(body: &[u8], what: &str) -> Result<M, Status> {
    M::decode(body).map_err(|_| Status::invalid_argument(format!("malformed {what}")))
}

/// Decodes an executor's JSON action body.
fn decode_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Status> {
    serde_json::from_slice(body)
        .map_err(|e| Status::invalid_argument(format!("malformed {what}: {e}")))
}

fn unpack<M: ProstMessageExt>(any: &Any) -> Result<Option<M>, Status> {
    any.unpack::<M>()
        .map_err(|e| Status::invalid_argument(e.to_string()))
}

/// The FlightInfo of a metadata command: its ticket is the command itself.
fn metadata_info(
    schema: &SchemaRef,
    command: &impl ProstMessageExt,
    request: Request<FlightDescriptor>,
) -> Result<Response<FlightInfo>, Status> {
    let ticket = Ticket::new(command.as_any().encode_to_vec());
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(format!("cannot encode schema: {e}")))?
        .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
        .with_descriptor(request.into_inner());
    Ok(Response::new(info))
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
    let batches = output.into_stream().map_err(|e| datafusion_to_status(&e))?;
    Ok(Box::pin(encode_batches(schema, batches)))
}

fn ipc_schema(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
    Ok(bytes)
}

fn one_result(body: Vec<u8>) -> Response<<ShoalFlightSqlService as FlightService>::DoActionStream> {
    let result = arrow_flight::Result { body: body.into() };
    Response::new(Box::pin(futures::stream::once(async { Ok(result) })))
}

#[tonic::async_trait]
impl FlightSqlService for ShoalFlightSqlService {
    type FlightService = ShoalFlightSqlService;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let token = self.auth.handshake(request.metadata())?;
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().unwrap_or_default().into(),
        };
        let mut response: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(futures::stream::once(async { Ok(reply) })));
        if let Some(token) = token {
            let bearer = format!("Bearer {token}")
                .parse()
                .map_err(|_| Status::internal("bad token"))?;
            response.metadata_mut().insert("authorization", bearer);
        }
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let options = self.options(request.metadata());
        let endpoints = self.endpoints(request.metadata())?;
        let info = self
            .statement_info(&query.query, &options, endpoints, request.into_inner())
            .await?;
        Ok(Response::new(info))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let handle = String::from_utf8_lossy(&ticket.statement_handle).to_string();
        let stream = stream_output(self.tickets.take(&handle)?)?;
        Ok(Response::new(self.tickets.track(handle, stream)))
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let options = self.options(request.metadata());
        self.update(&command.query, &options).await
    }

    async fn do_put_statement_ingest(
        &self,
        command: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let ingest = ingest_request(&command)?;
        let (schema, stream) = open_upload(request.into_inner())
            .await?
            .ok_or_else(|| Status::invalid_argument("the upload has no schema"))?;
        let rows = self
            .engine
            .ingest(&ingest, schema, stream)
            .await
            .map_err(|e| datafusion_to_status(&e))?;
        Ok(rows as i64)
    }

    // Prepared statements: ADBC and JDBC send every statement this way. The handle carries the
    // SQL and the bound parameters (see `prepared.rs`), so it needs no server-side state.

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let default_schema = self.sessions.of(request.metadata()).schema;
        let (sql, _) = number_placeholders(&query.query).map_err(|e| datafusion_to_status(&e))?;
        let shape = self
            .engine
            .prepare(&sql, default_schema.as_deref())
            .await
            .map_err(|e| datafusion_to_status(&e))?;
        // An empty dataset schema tells JDBC the statement is an update.
        let dataset_schema = match &shape.dataset_schema {
            Some(schema) => ipc_schema(schema)?,
            None => Default::default(),
        };
        let parameter_schema = if shape.parameter_schema.fields().is_empty() {
            Default::default()
        } else {
            ipc_schema(&shape.parameter_schema)?
        };
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: PreparedStatement::new(sql).encode()?,
            dataset_schema,
            parameter_schema,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        PreparedStatement::decode(&query.prepared_statement_handle).map(|_| ())
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let mut statement = PreparedStatement::decode(&query.prepared_statement_handle)?;
        statement.parameters = read_parameters(request.into_inner()).await?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(statement.encode()?),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let statement = PreparedStatement::decode(&query.prepared_statement_handle)?;
        let mut options = self.options(request.metadata());
        if let Some(parameters) = &statement.parameters {
            if parameters.num_rows() != 1 {
                return Err(Status::invalid_argument(format!(
                    "a query takes one row of parameters; {} rows are bound",
                    parameters.num_rows()
                )));
            }
            options.parameters = Some(row_values(parameters, 0)?);
        }
        let endpoints = self.endpoints(request.metadata())?;
        let info = self
            .statement_info(&statement.sql, &options, endpoints, request.into_inner())
            .await?;
        Ok(Response::new(info))
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let statement = PreparedStatement::decode(&query.prepared_statement_handle)?;
        let mut options = self.options(request.metadata());
        let sent = read_parameters(request.into_inner()).await?;
        let Some(parameters) = sent.or(statement.parameters) else {
            return self.update(&statement.sql, &options).await;
        };
        // JDBC's batches and ADBC's executemany: an INSERT ... VALUES runs as one write.
        if parameters.num_rows() > 1 {
            let rows = (0..parameters.num_rows())
                .map(|row| row_values(&parameters, row))
                .collect::<Result<Vec<_>, Status>>()?;
            let inserted = self
                .engine
                .insert_rows(&statement.sql, &rows, options.default_schema.as_deref())
                .await
                .map_err(|e| datafusion_to_status(&e))?;
            if let Some(output) = inserted {
                let batches = QueryEngine::collect(output)
                    .await
                    .map_err(|e| datafusion_to_status(&e))?;
                return Ok(affected_rows(&batches));
            }
        }
        // Other statements: one execution per parameter row.
        let mut total = 0;
        for row in 0..parameters.num_rows() {
            options.parameters = Some(row_values(&parameters, row)?);
            total += self.update(&statement.sql, &options).await?;
        }
        Ok(total)
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
        for schema in KNOWN_SCHEMAS {
            builder.append(SHOAL_CATALOG, schema);
        }
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
        let ctx = self
            .engine
            .session()
            .await
            .map_err(|e| datafusion_to_status(&e))?;
        let state = ctx.state();
        let mut builder = query.into_builder();
        for schema_name in KNOWN_SCHEMAS {
            // DataFusion serves information_schema itself, outside the catalog provider.
            let schema = state
                .schema_for_ref(TableReference::full(SHOAL_CATALOG, schema_name, ""))
                .map_err(|e| datafusion_to_status(&e))?;
            let table_type = if schema_name == SHOAL_SCHEMA {
                "TABLE"
            } else {
                "VIEW"
            };
            for name in schema.table_names() {
                let Some(table) = schema
                    .table(&name)
                    .await
                    .map_err(|e| datafusion_to_status(&e))?
                else {
                    continue;
                };
                let columns = shoal_flight::wire_types::plain_schema(&table.schema());
                builder
                    .append(SHOAL_CATALOG, schema_name, &name, table_type, &columns)
                    .map_err(|e| Status::internal(e.to_string()))?;
            }
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
        builder.append("VIEW");
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

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder(xdbc_type_info()).schema();
        metadata_info(&schema, &query, request)
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let builder = query.into_builder(xdbc_type_info());
        let schema = builder.schema();
        Ok(Response::new(batch_stream(schema, builder.build())))
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        metadata_info(&primary_keys_schema(), &query, request)
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let schema = primary_keys_schema();
        Ok(Response::new(batch_stream(
            Arc::clone(&schema),
            Ok(empty(schema)),
        )))
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        metadata_info(&foreign_keys_schema(), &query, request)
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        no_foreign_keys()
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        metadata_info(&foreign_keys_schema(), &query, request)
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        no_foreign_keys()
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        metadata_info(&foreign_keys_schema(), &query, request)
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        no_foreign_keys()
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        _request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let info = FlightInfo::decode(&*query.info)
            .map_err(|_| Status::invalid_argument("malformed FlightInfo"))?;
        // CancelResult: 1 cancelled, 3 not cancellable.
        let result = if self.cancel_info(&info) { 1 } else { 3 };
        Ok(ActionCancelQueryResult { result })
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let metadata = request.metadata().clone();
        let action = request.into_inner();
        match action.r#type.as_str() {
            CANCEL_FLIGHT_INFO => {
                let request: CancelFlightInfoRequest =
                    decode_body(&action.body, "CancelFlightInfoRequest")?;
                let info = request.info.unwrap_or_default();
                let status = if self.cancel_info(&info) {
                    CancelStatus::Cancelled
                } else {
                    CancelStatus::NotCancellable
                };
                Ok(one_result(
                    CancelFlightInfoResult::new(status).encode_to_vec(),
                ))
            }
            SET_SESSION_OPTIONS => {
                let request: SetSessionOptionsRequest =
                    decode_body(&action.body, "SetSessionOptionsRequest")?;
                let (result, cookie) = self.sessions.set(&metadata, request);
                let mut response = one_result(result.encode_to_vec());
                if let Some(cookie) = cookie {
                    response.metadata_mut().insert(
                        "set-cookie",
                        cookie.parse().map_err(|_| Status::internal("bad cookie"))?,
                    );
                }
                Ok(response)
            }
            GET_SESSION_OPTIONS => Ok(one_result(self.sessions.get(&metadata).encode_to_vec())),
            CLOSE_SESSION => Ok(one_result(self.sessions.close(&metadata)?.encode_to_vec())),
            rpc::ACTION_REDEEM_EXPORT => {
                let task = self
                    .exports
                    .redeem(&decode_json(&action.body, "export redemption")?)?;
                Ok(one_result(serde_json::to_vec(&task).expect("serializable")))
            }
            rpc::ACTION_EXPORT_READ => {
                self.exports
                    .read(&decode_json(&action.body, "export report")?);
                Ok(one_result(b"{}".to_vec()))
            }
            _ => {
                let body = control_actions::handle(self.engine.cluster(), action).await?;
                Ok(one_result(body))
            }
        }
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        let action = |name: &str, description: &str| {
            Ok(ActionType {
                r#type: name.to_string(),
                description: description.to_string(),
            })
        };
        Some(vec![
            action(CANCEL_FLIGHT_INFO, "Cancel a statement by its FlightInfo"),
            action(SET_SESSION_OPTIONS, "Set session options (catalog, schema)"),
            action(GET_SESSION_OPTIONS, "Get the session's options"),
            action(CLOSE_SESSION, "Close the session"),
        ])
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

fn no_foreign_keys() -> Result<Response<DoGetStream>, Status> {
    let schema = foreign_keys_schema();
    Ok(Response::new(batch_stream(
        Arc::clone(&schema),
        Ok(empty(schema)),
    )))
}

/// What a `CommandStatementIngest` asks for, checked.
fn ingest_request(command: &CommandStatementIngest) -> Result<IngestRequest, Status> {
    if command.temporary {
        return Err(Status::unimplemented("temporary tables are not supported"));
    }
    if command.transaction_id.is_some() {
        return Err(Status::unimplemented("transactions are not supported"));
    }
    if let Some(catalog) = command.catalog.as_deref().filter(|c| *c != SHOAL_CATALOG) {
        return Err(Status::not_found(format!(
            "catalog '{catalog}' does not exist; the catalog is {SHOAL_CATALOG}"
        )));
    }
    if let Some(schema) = command.schema.as_deref().filter(|s| *s != SHOAL_SCHEMA) {
        return Err(Status::invalid_argument(format!(
            "tables live in schema {SHOAL_SCHEMA}; cannot ingest into '{schema}'"
        )));
    }
    if command.table.is_empty() {
        return Err(Status::invalid_argument("the ingest names no table"));
    }
    let definition = command.table_definition_options.unwrap_or_default();
    let when_missing = match TableNotExistOption::try_from(definition.if_not_exist) {
        Ok(TableNotExistOption::Create) => WhenMissing::Create,
        _ => WhenMissing::Fail,
    };
    let when_exists = match TableExistsOption::try_from(definition.if_exists) {
        Ok(TableExistsOption::Append) => WhenExists::Append,
        Ok(TableExistsOption::Replace) => WhenExists::Replace,
        _ => WhenExists::Fail,
    };
    let options = TableOptions::from_pairs(
        command
            .options
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .map_err(|e| datafusion_to_status(&e))?;
    Ok(IngestRequest {
        table: command.table.clone(),
        when_missing,
        when_exists,
        options,
    })
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
