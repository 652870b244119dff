//! The `shoal` command: `demo`, `coordinator`, `executor`, `sql`, `bench` and `admin`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shoal::local_cluster::{Error, shutdown_signal};
use shoal_coordinator::{Coordinator, CoordinatorConfig, Membership, PgAuth, RaftTiming};
use shoal_executor::{ByteSize, ExecutorConfig, MemoryConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Parser)]
#[command(
    name = "shoal",
    version,
    about = "Shoal: a distributed SQL warehouse over sharded Parquet"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A whole cluster in one process, loaded with TPC-H, with a SQL prompt
    Demo(shoal::demo::DemoArgs),
    /// Run a coordinator: the Flight SQL endpoint, catalog and planner
    Coordinator(CoordinatorArgs),
    /// Run an executor: holds shards and runs plan fragments
    Executor(ExecutorArgs),
    /// SQL prompt (or -c/-f) against a running cluster
    Sql(shoal::cli::SqlArgs),
    /// Benchmarks: `shoal bench tpch --scale 1`
    Bench(shoal::bench::BenchArgs),
    /// Cluster administration: status, add or remove a coordinator
    Admin(shoal::admin::AdminArgs),
}

#[derive(clap::Args)]
struct CoordinatorArgs {
    /// Address for Flight SQL clients and executors
    #[arg(long, default_value = "127.0.0.1:50051")]
    listen: String,
    /// Address for Raft traffic between coordinators
    #[arg(long, default_value = "127.0.0.1:50052")]
    raft_listen: String,
    /// Raft node id (unique per coordinator, never reused)
    #[arg(long, default_value_t = 1)]
    node_id: u64,
    /// The voters of a new multi-coordinator cluster, this one included:
    /// `1=host:port,2=host:port,3=host:port` (Raft addresses). Without it (and without
    /// --join) the coordinator is a cluster of one
    #[arg(long, value_delimiter = ',', value_parser = parse_peer, conflicts_with = "join")]
    peers: Vec<(u64, String)>,
    /// Join a running cluster through any of these Raft addresses; then add this node with
    /// `shoal admin add-coordinator`
    #[arg(long, value_delimiter = ',')]
    join: Vec<String>,
    /// Flight address clients and executors use for this coordinator
    /// (default: http://<listen address>)
    #[arg(long)]
    advertise: Option<String>,
    /// Raft address the other coordinators use for this one (default: its --peers entry or
    /// the --raft-listen address)
    #[arg(long)]
    raft_advertise: Option<String>,
    /// Raft heartbeat interval in milliseconds
    #[arg(long, default_value_t = RaftTiming::default().heartbeat_ms)]
    raft_heartbeat_ms: u64,
    /// Raft election timeout range in milliseconds, MIN-MAX; keep MIN several heartbeats long
    /// [default: 500-800]
    #[arg(long, value_parser = parse_range)]
    raft_election_ms: Option<(u64, u64)>,
    /// Where the catalog lives
    #[arg(long, default_value = "./shoal-data/coordinator")]
    data_dir: PathBuf,
    /// Compression of batches sent between executors: lz4, zstd or none (none suits
    /// executors on one machine)
    #[arg(long, default_value = "lz4", value_parser = parse_shuffle_compression)]
    shuffle_compression: ShuffleCompression,
    /// Serve the Postgres wire protocol (psql, psycopg, BI tools) on this port of the
    /// --listen host, e.g. 5432
    #[arg(long)]
    pg_port: Option<u16>,
    /// Password Postgres clients must give; without it any client may connect, with any
    /// user name
    #[arg(long, env = "SHOAL_PG_PASSWORD", requires = "pg_port")]
    pg_password: Option<String>,
    /// How --pg-password is checked: scram (SCRAM-SHA-256) or password (sent in cleartext)
    #[arg(long, default_value = "scram", value_parser = ["scram", "password"])]
    pg_auth: String,
    /// Password Flight SQL clients must give (HTTP Basic, any user name); without it any
    /// client may connect
    #[arg(long, env = "SHOAL_FLIGHT_PASSWORD")]
    flight_password: Option<String>,
}

/// `--shuffle-compression`, parsed.
#[derive(Clone, Copy)]
struct ShuffleCompression(Option<arrow::ipc::CompressionType>);

fn parse_shuffle_compression(value: &str) -> Result<ShuffleCompression, String> {
    use arrow::ipc::CompressionType;
    match value {
        "lz4" => Ok(ShuffleCompression(Some(CompressionType::LZ4_FRAME))),
        "zstd" => Ok(ShuffleCompression(Some(CompressionType::ZSTD))),
        "none" => Ok(ShuffleCompression(None)),
        other => Err(format!(
            "unknown compression '{other}'; use lz4, zstd or none"
        )),
    }
}

#[derive(clap::Args)]
struct ExecutorArgs {
    /// Address for the executor's gRPC services (shard I/O and plan stages)
    #[arg(long, default_value = "127.0.0.1:50061")]
    listen: String,
    /// Address other nodes use to reach this executor (default: http://<listen address>)
    #[arg(long)]
    advertise: Option<String>,
    /// Flight addresses of the coordinators, comma-separated (others are discovered)
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:50051")]
    coordinator: Vec<String>,
    /// Where shard files live
    #[arg(long, default_value = "./shoal-data/executor")]
    data_dir: PathBuf,
    /// A label such as region=eu (repeatable)
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// Memory all plan stages on this executor may use together, e.g. 2GiB (default: unlimited)
    #[arg(long, env = "SHOAL_MEMORY_LIMIT")]
    memory_limit: Option<ByteSize>,
    /// Fail queries that outgrow --memory-limit instead of spilling to <data-dir>/spill
    #[arg(long)]
    no_spill: bool,
}

fn parse_peer(s: &str) -> Result<(u64, String), String> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("peer '{s}' is not id=host:port"))?;
    let id = id
        .trim()
        .parse()
        .map_err(|_| format!("peer '{s}': '{id}' is not a node id"))?;
    Ok((id, addr.trim().to_string()))
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let parsed = s
        .split_once('-')
        .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
    match parsed {
        Some((min, max)) if min < max => Ok((min, max)),
        _ => Err(format!("'{s}' is not MIN-MAX milliseconds with MIN < MAX")),
    }
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("label '{s}' is not key=value"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SHOAL_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(default_log_filter(&cli.command))
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ERROR: {e}");
            ExitCode::FAILURE
        }
    }
}

fn default_log_filter(command: &Command) -> &'static str {
    match command {
        // Keep the prompt clean; servers log their progress.
        Command::Demo(_) | Command::Sql(_) | Command::Bench(_) | Command::Admin(_) => "warn",
        // openraft narrates every term and snapshot at info.
        Command::Coordinator(_) | Command::Executor(_) => "info,openraft=warn",
    }
}

async fn run(command: Command) -> Result<(), Error> {
    match command {
        Command::Demo(args) => shoal::demo::run(args).await,
        Command::Sql(args) => shoal::cli::run(args).await,
        Command::Bench(args) => shoal::bench::run(args).await,
        Command::Admin(args) => shoal::admin::run(args).await,
        Command::Coordinator(args) => {
            let listener = TcpListener::bind(&args.listen).await?;
            let raft_listener = TcpListener::bind(&args.raft_listen).await?;
            let membership = if !args.join.is_empty() {
                Membership::Join(args.join)
            } else if !args.peers.is_empty() {
                let members: BTreeMap<u64, String> = args.peers.iter().cloned().collect();
                if members.len() != args.peers.len() {
                    return Err("--peers names a node id twice".into());
                }
                Membership::Bootstrap(members)
            } else {
                Membership::Single
            };
            let config = CoordinatorConfig {
                node_id: args.node_id,
                data_dir: args.data_dir,
                shuffle_compression: args.shuffle_compression.0,
                membership,
                raft_advertise: args.raft_advertise,
                flight_advertise: args.advertise,
                flight_password: args.flight_password,
                raft_timing: {
                    let defaults = RaftTiming::default();
                    let (min, max) = args
                        .raft_election_ms
                        .unwrap_or((defaults.election_min_ms, defaults.election_max_ms));
                    RaftTiming {
                        heartbeat_ms: args.raft_heartbeat_ms,
                        election_min_ms: min,
                        election_max_ms: max,
                    }
                },
            };
            let coordinator = Coordinator::open(config, raft_listener).await?;
            eprintln!("Flight SQL: grpc://{}", listener.local_addr()?);
            if let Some(port) = args.pg_port {
                let host = listener.local_addr()?.ip();
                let pg_listener = TcpListener::bind((host, port)).await?;
                eprintln!("Postgres:   {}", pg_listener.local_addr()?);
                let auth = match (args.pg_password, args.pg_auth.as_str()) {
                    (None, _) => PgAuth::Trust,
                    (Some(password), "password") => PgAuth::Cleartext { password },
                    (Some(password), _) => PgAuth::Scram { password },
                };
                let postgres = coordinator.clone();
                tokio::spawn(async move {
                    if let Err(e) = postgres
                        .serve_postgres(pg_listener, auth, on_signal())
                        .await
                    {
                        tracing::error!(error = %e, "postgres listener stopped");
                    }
                });
            }
            coordinator.serve(listener, on_signal()).await?;
            Ok(())
        }
        Command::Executor(args) => {
            let listener = TcpListener::bind(&args.listen).await?;
            let config = ExecutorConfig {
                data_dir: args.data_dir,
                coordinators: args.coordinator,
                advertise_address: args.advertise,
                labels: args.labels.into_iter().collect::<BTreeMap<_, _>>(),
                memory: MemoryConfig {
                    limit: args.memory_limit.map(|b| b.0),
                    spill: !args.no_spill,
                },
            };
            shoal_executor::serve(config, listener, on_signal()).await?;
            Ok(())
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
fn on_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shoal::demo::wait_for_signal().await;
        let _ = stop.send(true);
    });
    shutdown_signal(&stopped)
}
