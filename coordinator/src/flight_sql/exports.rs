//! Results with several endpoints: a query whose final-stage tasks clients read straight from
//! the executors. The coordinator holds each such query open, hands out one ticket per task,
//! lets each ticket be redeemed once before it expires, and lets the query go when every task
//! was read or can no longer be, and in any case [`READ_LIMIT`] after the tickets expired.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_flight::{FlightEndpoint, Ticket};
use datafusion::common::{DataFusionError, internal_datafusion_err};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use futures::StreamExt;
use shoal_flight::datafusion_to_status;
use shoal_flight::rpc::{self, ExportTaskRequest, ExportTicket, ExportedTask};
use tokio::sync::oneshot;
use tonic::Status;
use tonic::metadata::MetadataMap;
use tracing::{debug, warn};

use super::tickets::expires_after;
use crate::distributed::{FinalStageTasks, export_final_stage};

/// How long an exported task's ticket can be redeemed. Executors forget an idle query's
/// stages after ten minutes, so this stays well below that.
pub const EXPORT_TTL: Duration = Duration::from_secs(300);
/// The call header that asks for executor endpoints (`executors`) or one coordinator endpoint.
pub const ENDPOINTS_HEADER: &str = "x-shoal-endpoints";
/// The session option (SetSessionOptions) with the same meaning.
pub const ENDPOINTS_OPTION: &str = "shoal.endpoints";
/// How long a task redeemed before its ticket expired may go on being read; then the query is
/// let go even if an executor never reported the end of a read (it crashed, or lost its way).
pub const READ_LIMIT: Duration = Duration::from_secs(3600);
/// How long the coordinator may take to send the stages to their executors.
const PLACEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a statement's rows are read from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResultEndpoints {
    /// One endpoint, redeemed at the coordinator (what every client understands).
    #[default]
    Coordinator,
    /// One endpoint per task of the final stage, redeemed at its executor, when the query's
    /// head only gathers that stage; one coordinator endpoint otherwise.
    Executors,
}

impl ResultEndpoints {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "coordinator" => Some(Self::Coordinator),
            "executors" => Some(Self::Executors),
            _ => None,
        }
    }

    /// The call header's choice, if the call has a valid one.
    pub fn from_header(metadata: &MetadataMap) -> Result<Option<Self>, Status> {
        let Some(value) = metadata.get(ENDPOINTS_HEADER) else {
            return Ok(None);
        };
        let text = value.to_str().unwrap_or_default();
        Self::parse(text).map(Some).ok_or_else(|| {
            Status::invalid_argument(format!(
                "{ENDPOINTS_HEADER} must be 'executors' or 'coordinator', not '{text}'"
            ))
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TaskState {
    Waiting,
    Reading,
    Read,
    Expired,
}

struct Export {
    tasks: Vec<TaskState>,
    placed: FinalStageTasks,
    expires_at: Instant,
    /// Why the query stopped after its endpoints were handed out; redemptions answer with it.
    failure: Option<Status>,
    /// Dropping it ends the query on the executors.
    _release: oneshot::Sender<()>,
}

impl Export {
    /// Nothing can read this query any more.
    fn finished(&self) -> bool {
        self.tasks
            .iter()
            .all(|t| matches!(t, TaskState::Read | TaskState::Expired))
    }
}

#[derive(Clone)]
pub struct Exports {
    exports: Arc<Mutex<HashMap<String, Export>>>,
    ttl: Duration,
    read_limit: Duration,
}

impl Default for Exports {
    fn default() -> Self {
        Self::with_limits(EXPORT_TTL, READ_LIMIT)
    }
}

fn expired() -> Status {
    Status::not_found("unknown or expired ticket; run the statement again")
}

impl Exports {
    /// Tickets expire after `ttl`; tasks being read are let go `read_limit` after that.
    pub fn with_limits(ttl: Duration, read_limit: Duration) -> Self {
        Self {
            exports: Default::default(),
            ttl,
            read_limit,
        }
    }

    /// Starts `plan` with its final stage exported and returns one endpoint per task, or
    /// `None` when the plan's head does more than gather that stage (it then runs as usual).
    /// `coordinator` is this coordinator's Flight address, where executors report.
    pub async fn start(
        &self,
        plan: &Arc<dyn ExecutionPlan>,
        task_ctx: Arc<TaskContext>,
        coordinator: &str,
    ) -> Result<Option<Vec<FlightEndpoint>>, Status> {
        let (published_tx, published_rx) = oneshot::channel();
        let Some(exported) = export_final_stage(plan, Arc::new(Mutex::new(Some(published_tx))))
        else {
            return Ok(None);
        };
        let mut stream =
            execute_stream(exported, task_ctx).map_err(|e| datafusion_to_status(&e))?;
        let export_id = uuid::Uuid::new_v4().to_string();
        let (release, released) = oneshot::channel::<()>();
        let (failed_tx, failed_rx) = oneshot::channel::<DataFusionError>();
        let exports = self.clone();
        let id = export_id.clone();
        tokio::spawn(async move {
            // The head yields no rows: it ends only with an error, or is dropped on release.
            tokio::select! {
                item = stream.next() => {
                    if let Some(Err(e)) = item {
                        // Before the endpoints are handed out, `start` reports the error;
                        // after, redemptions do.
                        exports.fail(&id, datafusion_to_status(&e));
                        let _ = failed_tx.send(e);
                    }
                }
                _ = released => {}
            }
        });
        let placed = tokio::time::timeout(PLACEMENT_TIMEOUT, async {
            tokio::select! {
                biased;
                Ok(e) = failed_rx => Err(e),
                published = published_rx => published
                    .map_err(|_| internal_datafusion_err!("the exported query ended before its stages were placed"))?,
            }
        })
        .await
        .map_err(|_| Status::deadline_exceeded("the query's stages were not sent to the executors within 30 s"))?
        .map_err(|e| datafusion_to_status(&e))?;
        Ok(Some(self.register(export_id, placed, release, coordinator)))
    }

    fn register(
        &self,
        export_id: String,
        placed: FinalStageTasks,
        release: oneshot::Sender<()>,
        coordinator: &str,
    ) -> Vec<FlightEndpoint> {
        let endpoints = placed
            .executors
            .iter()
            .enumerate()
            .map(|(task, executor)| {
                let ticket = ExportTicket {
                    export_id: export_id.clone(),
                    task,
                    coordinator: coordinator.to_string(),
                };
                FlightEndpoint::new()
                    .with_ticket(Ticket::new(rpc::encode(rpc::EXPORT_TICKET_PREFIX, &ticket)))
                    .with_location(flight_location(executor.as_str()))
                    .with_expiration_time(expires_after(self.ttl))
            })
            .collect();
        let tasks = placed.executors.len();
        self.exports.lock().expect("not poisoned").insert(
            export_id.clone(),
            Export {
                tasks: vec![TaskState::Waiting; tasks],
                placed,
                expires_at: Instant::now() + self.ttl,
                failure: None,
                _release: release,
            },
        );
        debug!(export_id, tasks, "query exported");
        let exports = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(exports.ttl).await;
            exports.expire(&export_id);
            tokio::time::sleep(exports.read_limit).await;
            let removed = exports
                .exports
                .lock()
                .expect("not poisoned")
                .remove(&export_id);
            if removed.is_some() {
                warn!(
                    export_id,
                    "an exported task was never reported read; query released"
                );
            }
        });
        endpoints
    }

    /// An executor starts serving a task to a client: allowed once, before the ticket expires.
    /// Returns what the executor is to read.
    pub fn redeem(&self, request: &ExportTaskRequest) -> Result<ExportedTask, Status> {
        let mut exports = self.exports.lock().expect("not poisoned");
        let export = exports.get_mut(&request.export_id).ok_or_else(expired)?;
        if let Some(failure) = &export.failure {
            return Err(failure.clone());
        }
        let live = Instant::now() < export.expires_at;
        let state = export
            .tasks
            .get_mut(request.task)
            .ok_or_else(|| Status::invalid_argument(format!("no task {}", request.task)))?;
        match state {
            TaskState::Waiting if live => {
                *state = TaskState::Reading;
                Ok(ExportedTask {
                    query_id: export.placed.query_id.clone(),
                    stage: export.placed.stage,
                    task: request.task,
                    partitions: export.placed.partitions_per_task,
                })
            }
            TaskState::Waiting | TaskState::Expired => Err(expired()),
            TaskState::Reading | TaskState::Read => Err(Status::failed_precondition(
                "this endpoint's ticket was already redeemed; run the statement again",
            )),
        }
    }

    /// An executor finished serving a task it redeemed (to its end, or the client went away).
    pub fn read(&self, request: &ExportTaskRequest) {
        self.update(&request.export_id, |tasks| {
            if let Some(state @ TaskState::Reading) = tasks.get_mut(request.task) {
                *state = TaskState::Read;
            }
        });
    }

    /// The query stopped with `failure` after its endpoints were handed out.
    fn fail(&self, export_id: &str, failure: Status) {
        if let Some(export) = self
            .exports
            .lock()
            .expect("not poisoned")
            .get_mut(export_id)
        {
            export.failure = Some(failure);
        }
    }

    /// Tickets not redeemed by now can no longer be.
    fn expire(&self, export_id: &str) {
        self.update(export_id, |tasks| {
            for state in tasks.iter_mut().filter(|s| **s == TaskState::Waiting) {
                *state = TaskState::Expired;
            }
        });
    }

    fn update(&self, export_id: &str, change: impl FnOnce(&mut Vec<TaskState>)) {
        let mut exports = self.exports.lock().expect("not poisoned");
        let Some(export) = exports.get_mut(export_id) else {
            return;
        };
        change(&mut export.tasks);
        if export.finished() {
            exports.remove(export_id);
            debug!(export_id, "exported query released");
        }
    }

    /// Lets the query go now (CancelFlightInfo): unredeemed tickets stop working; tasks being
    /// read stop when their readers drop them.
    pub fn cancel(&self, export_id: &str) -> bool {
        let removed = self.exports.lock().expect("not poisoned").remove(export_id);
        if removed.is_some() {
            warn!(export_id, "exported query cancelled");
        }
        removed.is_some()
    }

    /// Queries held open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.exports.lock().expect("not poisoned").len()
    }
}

/// The Flight location of an executor whose worker URL is `url` (`http://host:port`).
fn flight_location(url: &str) -> String {
    let address = url.trim_end_matches('/');
    match address.strip_prefix("https://") {
        Some(rest) => format!("grpc+tls://{rest}"),
        None => format!(
            "grpc+tcp://{}",
            address.strip_prefix("http://").unwrap_or(address)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(tasks: usize) -> FinalStageTasks {
        FinalStageTasks {
            query_id: uuid::Uuid::new_v4().to_string(),
            stage: 1,
            executors: (0..tasks)
                .map(|i| format!("http://127.0.0.1:{}", 7000 + i).parse().unwrap())
                .collect(),
            partitions_per_task: 2,
        }
    }

    fn register(exports: &Exports, tasks: usize) -> (Vec<ExportTicket>, oneshot::Receiver<()>) {
        let (release, released) = oneshot::channel();
        let endpoints = exports.register("q".into(), placed(tasks), release, "http://c:1");
        let tickets = endpoints
            .iter()
            .map(|e| {
                let bytes = &e.ticket.as_ref().unwrap().ticket;
                rpc::decode(rpc::EXPORT_TICKET_PREFIX, bytes)
                    .unwrap()
                    .unwrap()
            })
            .collect();
        (tickets, released)
    }

    fn request(ticket: &ExportTicket) -> ExportTaskRequest {
        ExportTaskRequest {
            export_id: ticket.export_id.clone(),
            task: ticket.task,
        }
    }

    fn released(receiver: &mut oneshot::Receiver<()>) -> bool {
        receiver.try_recv() == Err(oneshot::error::TryRecvError::Closed)
    }

    #[tokio::test]
    async fn every_task_is_redeemed_once_and_the_query_released_after_the_last_read() {
        let exports = Exports::default();
        let (tickets, mut release) = register(&exports, 2);
        assert_eq!(tickets[1].task, 1);
        assert_eq!(tickets[1].coordinator, "http://c:1");

        let task = exports.redeem(&request(&tickets[0])).unwrap();
        assert_eq!((task.stage, task.task, task.partitions), (1, 0, 2));
        let again = exports.redeem(&request(&tickets[0])).unwrap_err();
        assert_eq!(again.code(), tonic::Code::FailedPrecondition);
        // A report for a task nobody redeemed changes nothing.
        exports.read(&request(&tickets[1]));
        exports.read(&request(&tickets[0]));
        assert!(!released(&mut release), "task 1 is still unread");
        exports.redeem(&request(&tickets[1])).unwrap();
        exports.read(&request(&tickets[1]));
        assert!(released(&mut release));
        assert_eq!(exports.open(), 0);
        let late = exports.redeem(&request(&tickets[1])).unwrap_err();
        assert_eq!(late.code(), tonic::Code::NotFound);
    }

    #[tokio::test]
    async fn unredeemed_tickets_expire_but_a_task_being_read_holds_the_query() {
        let exports = Exports::with_limits(Duration::from_millis(200), Duration::from_secs(60));
        let (tickets, mut release) = register(&exports, 2);
        exports.redeem(&request(&tickets[0])).unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        let late = exports.redeem(&request(&tickets[1])).unwrap_err();
        assert_eq!(late.code(), tonic::Code::NotFound);
        assert!(late.message().contains("expired"));
        assert_eq!(exports.open(), 1, "task 0 is still being read");
        assert!(!released(&mut release));
        exports.read(&request(&tickets[0]));
        assert_eq!(exports.open(), 0);
    }

    #[tokio::test]
    async fn a_read_never_reported_is_let_go_after_the_read_limit() {
        let exports = Exports::with_limits(Duration::from_millis(100), Duration::from_millis(200));
        let (tickets, mut release) = register(&exports, 1);
        exports.redeem(&request(&tickets[0])).unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(exports.open(), 0);
        assert!(released(&mut release));
    }

    #[tokio::test]
    async fn a_query_that_failed_after_its_endpoints_were_handed_out_answers_with_its_error() {
        let exports = Exports::default();
        let (tickets, _release) = register(&exports, 2);
        exports.fail("q", Status::resource_exhausted("out of memory"));
        let error = exports.redeem(&request(&tickets[0])).unwrap_err();
        assert_eq!(error.code(), tonic::Code::ResourceExhausted);
    }

    #[tokio::test]
    async fn cancel_releases_at_once() {
        let exports = Exports::default();
        let (tickets, mut release) = register(&exports, 3);
        assert!(exports.cancel(&tickets[0].export_id));
        assert!(released(&mut release));
        assert!(!exports.cancel(&tickets[0].export_id));
    }

    #[test]
    fn endpoint_choices_parse() {
        assert_eq!(
            ResultEndpoints::parse(" Executors"),
            Some(ResultEndpoints::Executors)
        );
        assert_eq!(
            ResultEndpoints::parse("coordinator"),
            Some(ResultEndpoints::Coordinator)
        );
        assert_eq!(ResultEndpoints::parse("many"), None);
        let mut metadata = MetadataMap::new();
        metadata.insert(ENDPOINTS_HEADER, "lots".parse().unwrap());
        assert_eq!(
            ResultEndpoints::from_header(&metadata).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }

    #[test]
    fn locations_are_flight_uris() {
        assert_eq!(
            flight_location("http://10.0.0.7:50061/"),
            "grpc+tcp://10.0.0.7:50061"
        );
        assert_eq!(flight_location("https://e1:50061"), "grpc+tls://e1:50061");
    }
}
