//! `shoal demo`: a whole cluster in one process, loaded with TPC-H, with a SQL prompt.

use std::path::PathBuf;
use std::time::Instant;

use crate::cli::client::SqlClient;
use crate::cli::errors::error_message;
use crate::local_cluster::{Error, LocalCluster, LocalClusterOptions};
use crate::tpch;
use shoal_coordinator::PgAuth;
use shoal_executor::{ByteSize, MemoryConfig};

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// TPC-H scale factor of the sample data (0.1 is about 100 MB)
    #[arg(long, default_value_t = 0.1)]
    pub scale: f64,
    /// Number of executors
    #[arg(long, default_value_t = 3)]
    pub executors: usize,
    /// Where the catalog, shards and generated data live (default: <user data dir>/shoal/demo)
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Flight SQL port of the coordinator on 127.0.0.1 (0: any free port)
    #[arg(long, default_value_t = 50051)]
    pub port: u16,
    /// Postgres wire protocol port on 127.0.0.1, for psql and Postgres drivers (0: any free port)
    #[arg(long, default_value_t = 5433)]
    pub pg_port: u16,
    /// Password Postgres clients must give (checked by SCRAM-SHA-256); without it any client
    /// may connect, with any user name
    #[arg(long, env = "SHOAL_PG_PASSWORD")]
    pub pg_password: Option<String>,
    /// Serve until SIGINT/SIGTERM instead of opening the SQL prompt
    #[arg(long)]
    pub no_prompt: bool,
    /// Memory each executor's plan stages may use, e.g. 2GiB (default: unlimited)
    #[arg(long, env = "SHOAL_EXECUTOR_MEMORY")]
    pub executor_memory: Option<ByteSize>,
    /// Fail queries that outgrow --executor-memory instead of spilling to disk
    #[arg(long)]
    pub no_spill: bool,
}

pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("shoal")
        .join("demo")
}

pub async fn run(args: DemoArgs) -> Result<(), Error> {
    if args.executors == 0 {
        return Err("--executors must be at least 1".into());
    }
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    std::fs::create_dir_all(&data_dir)?;
    eprintln!(
        "Starting Shoal: 1 coordinator, {} executors, data in {}",
        args.executors,
        data_dir.display()
    );
    let options = LocalClusterOptions {
        executors: args.executors,
        port: args.port,
        executor_memory: MemoryConfig {
            limit: args.executor_memory.map(|b| b.0),
            spill: !args.no_spill,
        },
        pg_port: Some(args.pg_port),
        pg_auth: match &args.pg_password {
            Some(password) => PgAuth::Scram {
                password: password.clone(),
            },
            None => PgAuth::Trust,
        },
        flight_password: None,
    };
    let cluster = LocalCluster::start(&data_dir, &options).await?;
    let loaded = load_tpch(&cluster.url, &data_dir, args.scale).await;
    if let Err(e) = loaded {
        cluster.shutdown().await;
        return Err(e);
    }
    println!("Flight SQL: {}", cluster.url);
    if let Some(pg) = cluster.pg_address {
        println!("Postgres:   psql -h {} -p {} -U shoal", pg.ip(), pg.port());
    }
    if args.no_prompt {
        eprintln!("Serving until SIGINT or SIGTERM.");
        wait_for_signal().await;
    } else {
        if let Err(e) = crate::cli::repl(&cluster.url, crate::cli::OutputFormat::Table, None).await
        {
            eprintln!("ERROR: {e}");
        }
    }
    eprintln!("Shutting down.");
    cluster.shutdown().await;
    Ok(())
}

/// Creates and loads the TPC-H tables that do not exist yet, through the same Flight SQL
/// statements a user would send (CREATE TABLE, COPY).
pub async fn load_tpch(url: &str, data_dir: &std::path::Path, scale: f64) -> Result<(), Error> {
    let mut client = SqlClient::connect(url, None).await?;
    let existing = query_strings(&mut client, "SHOW TABLES").await?;
    let missing: Vec<&str> = tpch::TABLES
        .iter()
        .copied()
        .filter(|t| !existing.iter().any(|e| e == t))
        .collect();
    if missing.is_empty() {
        eprintln!(
            "Reusing the TPC-H tables already loaded in {}",
            data_dir.display()
        );
        return Ok(());
    }
    let files = data_dir.join(format!("tpch-sf{scale}"));
    let started = Instant::now();
    eprintln!(
        "Generating TPC-H at scale {scale} in {} ...",
        files.display()
    );
    let dir = files.clone();
    tokio::task::spawn_blocking(move || tpch::generate_parquet(&dir, scale)).await??;
    for table in missing {
        execute(&mut client, tpch::create_table_sql(table)).await?;
        let path = tpch::parquet_path(&files, table);
        execute(
            &mut client,
            &format!("COPY {table} FROM '{}'", path.display()),
        )
        .await?;
        eprintln!("  loaded {table}");
    }
    eprintln!("Loaded TPC-H in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

async fn execute(client: &mut SqlClient, sql: &str) -> Result<(), Error> {
    let failed = |e: arrow_flight::error::FlightError| format!("{sql}: {}", error_message(&e));
    let mut results = client.execute(sql).await.map_err(failed)?;
    while results.next_batch().await.map_err(failed)?.is_some() {}
    Ok(())
}

/// The `table_name` column of a query's result (as `SHOW TABLES` returns it).
async fn query_strings(client: &mut SqlClient, sql: &str) -> Result<Vec<String>, Error> {
    let mut results = client.execute(sql).await?;
    let mut out = Vec::new();
    while let Some(batch) = results.next_batch().await? {
        let Ok(index) = batch.schema().index_of("table_name") else {
            continue;
        };
        let column = arrow::compute::cast(batch.column(index), &arrow::datatypes::DataType::Utf8)?;
        let strings = column
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .ok_or("not strings")?;
        out.extend(strings.iter().flatten().map(str::to_string));
    }
    Ok(out)
}

pub async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("can install a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
