//! `shoal admin`: membership changes and status of the coordinators' catalog group.

use std::time::Duration;

use base64::Engine;
use shoal_catalog::NodeStatus;
use shoal_flight::executor_client::authorized_action;
use shoal_flight::rpc::{self, AddCoordinatorRequest, RemoveCoordinatorRequest};

use crate::cli::client::endpoint_uri;
use crate::local_cluster::Error;

/// A membership change copies the catalog to the new node first; give it time.
const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(90);
const STATUS_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(clap::Args, Debug)]
pub struct AdminArgs {
    /// Flight SQL endpoint of any coordinator
    #[arg(long, default_value = "grpc://127.0.0.1:50051", env = "SHOAL_URL")]
    pub url: String,
    /// User name sent with --password
    #[arg(long, default_value = "shoal", env = "SHOAL_USER")]
    pub user: String,
    /// Password, for coordinators started with --flight-password
    #[arg(long, env = "SHOAL_PASSWORD")]
    pub password: Option<String>,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum AdminCommand {
    /// This coordinator's view of the group: term, leader, voters, coordinators
    Status,
    /// Add a running coordinator (started with --join) as a voter; it catches up first
    AddCoordinator {
        /// The new coordinator's --node-id (never one used before)
        #[arg(long)]
        node_id: u64,
        /// The new coordinator's Raft address (its --raft-advertise)
        #[arg(long)]
        raft_address: String,
    },
    /// Remove a coordinator from the group; its id is retired for good
    RemoveCoordinator {
        #[arg(long)]
        node_id: u64,
    },
}

/// How long an action is retried while the coordinator answers UNAVAILABLE (an election,
/// or a leader that just died): membership changes are idempotent, so retrying is safe.
const RETRY_FOR: Duration = Duration::from_secs(20);

/// Runs one action, retrying while the coordinator says it cannot serve right now.
async fn action<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
    address: &str,
    kind: &str,
    request: &Req,
    timeout: Duration,
    authorization: Option<&str>,
) -> Result<Resp, tonic::Status> {
    let give_up = std::time::Instant::now() + RETRY_FOR;
    loop {
        match authorized_action(address, kind, request, timeout, authorization).await {
            Err(status)
                if status.code() == tonic::Code::Unavailable
                    && std::time::Instant::now() < give_up =>
            {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => return other,
        }
    }
}

pub async fn run(args: AdminArgs) -> Result<(), Error> {
    let address = endpoint_uri(&args.url)?;
    let failed = |e: tonic::Status| -> Error { format!("{}: {}", args.url, e.message()).into() };
    let authorization = args.password.as_ref().map(|password| {
        let credentials = format!("{}:{password}", args.user);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
    });
    let authorization = authorization.as_deref();
    match args.command {
        AdminCommand::Status => {
            let status: NodeStatus = action(
                &address,
                rpc::ACTION_CLUSTER_STATUS,
                &(),
                STATUS_TIMEOUT,
                authorization,
            )
            .await
            .map_err(failed)?;
            print!("{}", render_status(&status));
        }
        AdminCommand::AddCoordinator {
            node_id,
            raft_address,
        } => {
            let request = AddCoordinatorRequest {
                node_id,
                raft_address,
            };
            let _: serde_json::Value = action(
                &address,
                rpc::ACTION_ADD_COORDINATOR,
                &request,
                MEMBERSHIP_TIMEOUT,
                authorization,
            )
            .await
            .map_err(failed)?;
            println!("coordinator {node_id} is a voter");
        }
        AdminCommand::RemoveCoordinator { node_id } => {
            let request = RemoveCoordinatorRequest { node_id };
            let _: serde_json::Value = action(
                &address,
                rpc::ACTION_REMOVE_COORDINATOR,
                &request,
                MEMBERSHIP_TIMEOUT,
                authorization,
            )
            .await
            .map_err(failed)?;
            println!("coordinator {node_id} removed; its id is retired");
        }
    }
    Ok(())
}

fn render_status(status: &NodeStatus) -> String {
    let mut out = format!(
        "node {}  term {}  leader {}  applied index {}\n",
        status.node_id,
        status.term,
        status
            .leader
            .map_or_else(|| "none".to_string(), |l| l.to_string()),
        status.applied_index
    );
    out.push_str("id  role     raft address           flight address\n");
    for (id, raft) in &status.members {
        let role = if status.voters.contains(id) {
            "voter"
        } else {
            "learner"
        };
        let flight = status
            .coordinators
            .get(id)
            .map_or("-", |c| c.flight_address.as_str());
        out.push_str(&format!("{id:<3} {role:<8} {raft:<22} {flight}\n"));
    }
    for (id, c) in status.coordinators.iter().filter(|(_, c)| c.retired) {
        out.push_str(&format!("{id:<3} retired  {:<22} -\n", c.raft_address));
    }
    out
}
