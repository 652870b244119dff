//! The Flight service the coordinator serves: arrow-flight's Flight SQL dispatch, plus the two
//! Flight RPCs that dispatch leaves unimplemented, `PollFlightInfo` and `GetSchema`; every call
//! but Handshake is authenticated here, and tickets only executors redeem are refused clearly.

use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, PollInfo,
    SchemaAsIpc, SchemaResult, Ticket,
};
use shoal_flight::rpc;
use tonic::{Request, Response, Status, Streaming};

use super::service::ShoalFlightSqlService;

type Inner = ShoalFlightSqlService;

#[derive(Clone)]
pub struct FrontDoor {
    sql: ShoalFlightSqlService,
}

/// Actions executors send to coordinators.
const EXECUTOR_ACTIONS: [&str; 4] = [
    rpc::ACTION_REGISTER_EXECUTOR,
    rpc::ACTION_HEARTBEAT,
    rpc::ACTION_REDEEM_EXPORT,
    rpc::ACTION_EXPORT_READ,
];

impl FrontDoor {
    pub fn new(sql: ShoalFlightSqlService) -> Self {
        Self { sql }
    }

    /// Lets a call through when it carries valid credentials (see `auth.rs`).
    fn admit<T>(&self, request: &Request<T>) -> Result<(), Status> {
        self.sql.auth().check(request.metadata())
    }
}

#[tonic::async_trait]
impl FlightService for FrontDoor {
    type HandshakeStream = <Inner as FlightService>::HandshakeStream;
    type ListFlightsStream = <Inner as FlightService>::ListFlightsStream;
    type DoGetStream = <Inner as FlightService>::DoGetStream;
    type DoPutStream = <Inner as FlightService>::DoPutStream;
    type DoActionStream = <Inner as FlightService>::DoActionStream;
    type ListActionsStream = <Inner as FlightService>::ListActionsStream;
    type DoExchangeStream = <Inner as FlightService>::DoExchangeStream;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        FlightService::handshake(&self.sql, request).await
    }

    async fn list_flights(
        &self,
        request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        self.admit(&request)?;
        FlightService::list_flights(&self.sql, request).await
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.admit(&request)?;
        FlightService::get_flight_info(&self.sql, request).await
    }

    /// Statements are planned before GetFlightInfo answers, so the first poll is complete.
    async fn poll_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        self.admit(&request)?;
        let info = FlightService::get_flight_info(&self.sql, request)
            .await?
            .into_inner();
        Ok(Response::new(PollInfo {
            info: Some(info),
            flight_descriptor: None,
            progress: Some(1.0),
            expiration_time: None,
        }))
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        self.admit(&request)?;
        let schema = self.sql.schema_of(request).await?;
        let result = SchemaAsIpc::new(&schema, &IpcWriteOptions::default())
            .try_into()
            .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
        Ok(Response::new(result))
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        self.admit(&request)?;
        if request
            .get_ref()
            .ticket
            .starts_with(rpc::EXPORT_TICKET_PREFIX)
        {
            return Err(Status::invalid_argument(
                "this ticket is redeemed at the executor its endpoint's location names, not at the coordinator",
            ));
        }
        FlightService::do_get(&self.sql, request).await
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        self.admit(&request)?;
        FlightService::do_put(&self.sql, request).await
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        // Executors' own actions carry no credentials yet (cluster credentials and TLS will
        // cover them); every other action, `shoal admin`'s included, needs the password.
        if !EXECUTOR_ACTIONS.contains(&request.get_ref().r#type.as_str()) {
            self.admit(&request)?;
        }
        FlightService::do_action(&self.sql, request).await
    }

    async fn list_actions(
        &self,
        request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        self.admit(&request)?;
        FlightService::list_actions(&self.sql, request).await
    }

    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        self.admit(&request)?;
        FlightService::do_exchange(&self.sql, request).await
    }
}
