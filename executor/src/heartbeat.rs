//! Registration with the coordinators and the heartbeats that keep this executor schedulable.
//!
//! An executor heartbeats to every coordinator, not only the catalog leader: each coordinator
//! plans queries on its own and must know which executors are alive, and a leader change then
//! needs nothing from the executors. Heartbeat answers list the active coordinators, so ones
//! added later are found without restarting the executor.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use shoal_catalog::ExecutorId;
use shoal_flight::executor_client;
use shoal_flight::rpc::{
    self, HeartbeatRequest, HeartbeatResponse, RegisterExecutorRequest, RegisterExecutorResponse,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

/// How often an executor says it is alive; the coordinator suspects it after a few misses.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(500);

/// Every how many failed registration attempts a warning is logged.
const REGISTRATION_WARN_EVERY: u64 = 4;

/// The coordinators this executor heartbeats to: the configured ones and every one they
/// reported. Other nodes' claims (a client's ticket) are checked against it.
#[derive(Clone, Default)]
pub struct KnownCoordinators(Arc<RwLock<HashSet<String>>>);

impl KnownCoordinators {
    pub fn contains(&self, address: &str) -> bool {
        self.0.read().expect("not poisoned").contains(address)
    }

    fn insert(&self, address: &str) -> bool {
        self.0
            .write()
            .expect("not poisoned")
            .insert(address.to_string())
    }
}

/// Heartbeats to `coordinators` and to every coordinator they report, until `shutdown`;
/// `known` learns every one of them.
pub async fn run(
    known: KnownCoordinators,
    coordinators: Vec<String>,
    data_id: String,
    address: String,
    labels: BTreeMap<String, String>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let (found_tx, mut found_rx) = mpsc::unbounded_channel::<Vec<String>>();
    let mut loops = JoinSet::new();
    let start = |coordinator: String, loops: &mut JoinSet<()>| {
        if known.insert(&coordinator) {
            loops.spawn(beat_one(
                coordinator,
                data_id.clone(),
                address.clone(),
                labels.clone(),
                found_tx.clone(),
            ));
        }
    };
    for coordinator in coordinators {
        start(coordinator, &mut loops);
    }
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            Some(found) = found_rx.recv() => {
                for coordinator in found {
                    start(coordinator, &mut loops);
                }
            }
        }
    }
}

/// Registers with one coordinator (retrying until it answers), then heartbeats to it.
/// Re-registers whenever it does not know this executor (it restarted, or it has not applied
/// the registration yet); registering is idempotent per data dir.
async fn beat_one(
    coordinator: String,
    data_id: String,
    address: String,
    labels: BTreeMap<String, String>,
    found: mpsc::UnboundedSender<Vec<String>>,
) {
    let register = RegisterExecutorRequest {
        data_id,
        address: address.clone(),
        labels,
    };
    let mut executor_id: Option<ExecutorId> = None;
    let mut failed_registrations: u64 = 0;
    loop {
        let step = async {
            match executor_id {
                None => {
                    let response: Result<RegisterExecutorResponse, _> = executor_client::action(
                        &coordinator,
                        rpc::ACTION_REGISTER_EXECUTOR,
                        &register,
                    )
                    .await;
                    match response {
                        Ok(r) => {
                            info!(executor = r.executor_id, %address, %coordinator, "registered");
                            executor_id = Some(r.executor_id);
                        }
                        Err(status) => {
                            // The first failure is routine (the coordinator may still be
                            // starting); a registration that keeps failing is worth a warning.
                            failed_registrations += 1;
                            if failed_registrations.is_multiple_of(REGISTRATION_WARN_EVERY) {
                                warn!(%coordinator, attempts = failed_registrations, code = ?status.code(), error = %status.message(), "registration keeps failing; retrying");
                            } else {
                                debug!(%coordinator, error = %status.message(), "registration failed; retrying");
                            }
                        }
                    }
                }
                Some(id) => {
                    let beat = HeartbeatRequest {
                        executor_id: id,
                        address: address.clone(),
                    };
                    let response: Result<HeartbeatResponse, _> =
                        executor_client::action(&coordinator, rpc::ACTION_HEARTBEAT, &beat).await;
                    match response {
                        Ok(r) => {
                            let _ = found.send(r.coordinators);
                        }
                        Err(status) if status.code() == tonic::Code::NotFound => {
                            info!(
                                executor = id,
                                %coordinator,
                                "coordinator does not know this executor; registering again"
                            );
                            executor_id = None;
                        }
                        Err(status) => {
                            debug!(executor = id, %coordinator, error = %status.message(), "heartbeat failed");
                        }
                    }
                }
            }
            tokio::time::sleep(HEARTBEAT_INTERVAL).await;
        };
        step.await;
    }
}
