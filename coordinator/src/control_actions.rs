//! Control actions on the coordinator: executors' registration and heartbeats, and the
//! administrator's membership changes and cluster status.

use std::sync::Arc;

use arrow_flight::Action;
use shoal_catalog::{Command, Response};
use shoal_flight::datafusion_to_status;
use shoal_flight::rpc::{
    self, AddCoordinatorRequest, HeartbeatRequest, HeartbeatResponse, RegisterExecutorRequest,
    RegisterExecutorResponse, RemoveCoordinatorRequest,
};
use tonic::Status;
use tracing::info;

use crate::cluster::{Cluster, catalog_error};

/// Handles one control action and returns its JSON response body.
pub async fn handle(cluster: &Arc<Cluster>, action: Action) -> Result<Vec<u8>, Status> {
    match action.r#type.as_str() {
        rpc::ACTION_REGISTER_EXECUTOR => {
            let req: RegisterExecutorRequest = parse(&action.body)?;
            let response = cluster
                .propose(Command::RegisterExecutor {
                    data_id: req.data_id,
                    address: req.address.clone(),
                    labels: req.labels,
                })
                .await
                .map_err(|e| datafusion_to_status(&e))?;
            let Response::ExecutorRegistered { id } = response else {
                return Err(Status::internal(
                    "unexpected catalog response to registration",
                ));
            };
            cluster.executors.heartbeat(id);
            info!(executor = id, address = %req.address, "executor registered");
            Ok(
                serde_json::to_vec(&RegisterExecutorResponse { executor_id: id })
                    .expect("serializable"),
            )
        }
        rpc::ACTION_HEARTBEAT => {
            let req: HeartbeatRequest = parse(&action.body)?;
            let state = cluster.catalog.state();
            let known = state
                .executors
                .get(&req.executor_id)
                .is_some_and(|e| e.address == req.address);
            if !known {
                return Err(Status::not_found(format!(
                    "executor {} is not registered",
                    req.executor_id
                )));
            }
            cluster.executors.heartbeat(req.executor_id);
            let coordinators = state
                .active_coordinators()
                .map(|c| c.flight_address.clone())
                .collect();
            Ok(serde_json::to_vec(&HeartbeatResponse { coordinators }).expect("serializable"))
        }
        rpc::ACTION_ADD_COORDINATOR => {
            let req: AddCoordinatorRequest = parse(&action.body)?;
            cluster
                .catalog
                .add_coordinator(req.node_id, req.raft_address)
                .await
                .map_err(|e| datafusion_to_status(&catalog_error(e)))?;
            Ok(b"{}".to_vec())
        }
        rpc::ACTION_REMOVE_COORDINATOR => {
            let req: RemoveCoordinatorRequest = parse(&action.body)?;
            cluster
                .catalog
                .remove_coordinator(req.node_id)
                .await
                .map_err(|e| datafusion_to_status(&catalog_error(e)))?;
            Ok(b"{}".to_vec())
        }
        rpc::ACTION_CLUSTER_STATUS => {
            let status = cluster.catalog.status().await;
            Ok(serde_json::to_vec(&status).expect("serializable"))
        }
        other => Err(Status::invalid_argument(format!(
            "unknown action '{other}'"
        ))),
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Status> {
    serde_json::from_slice(body)
        .map_err(|e| Status::invalid_argument(format!("malformed action: {e}")))
}
