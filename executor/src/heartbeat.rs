//! Registration with the coordinator and the heartbeat that keeps this executor schedulable.

use std::collections::BTreeMap;
use std::time::Duration;

use shoal_catalog::ExecutorId;
use shoal_flight::executor_client;
use shoal_flight::rpc::{
    self, HeartbeatRequest, RegisterExecutorRequest, RegisterExecutorResponse,
};
use tracing::{debug, info, warn};

/// How often an executor says it is alive; the coordinator suspects it after a few misses.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(500);

/// Every how many failed registration attempts a warning is logged.
const REGISTRATION_WARN_EVERY: u64 = 4;

/// Registers (retrying until the coordinator answers), then heartbeats until `shutdown`.
/// Re-registers whenever the coordinator does not know this executor (after a restart).
pub async fn run(
    coordinator: String,
    data_id: String,
    address: String,
    labels: BTreeMap<String, String>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
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
                    let response: Result<serde_json::Value, _> =
                        executor_client::action(&coordinator, rpc::ACTION_HEARTBEAT, &beat).await;
                    if let Err(status) = response {
                        if status.code() == tonic::Code::NotFound {
                            warn!(
                                executor = id,
                                "coordinator forgot this executor; registering again"
                            );
                            executor_id = None;
                        } else {
                            debug!(executor = id, error = %status.message(), "heartbeat failed");
                        }
                    }
                }
            }
            tokio::time::sleep(HEARTBEAT_INTERVAL).await;
        };
        tokio::select! {
            _ = &mut shutdown => return,
            _ = step => {}
        }
    }
}
