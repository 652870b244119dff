//! `shoal bench tpch`: generates TPC-H, loads it into an in-process cluster, and times the 22
//! queries on Shoal, on single-node DataFusion and on DuckDB over the same Parquet files; then
//! short-query latency and result streaming over Flight SQL. Prints a table and writes CSV.

mod compare;
mod duckdb;
mod latency;
mod report;
pub mod stats;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::prelude::{ParquetReadOptions, SessionContext};
use shoal_executor::{ByteSize, MemoryConfig};

use crate::cli::client::SqlClient;
use crate::local_cluster::{Error, LocalCluster, LocalClusterOptions};
use crate::tpch;
use compare::canonical_rows;
use report::{QueryRow, Report};

#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub suite: BenchSuite,
}

#[derive(clap::Subcommand)]
pub enum BenchSuite {
    /// The 22 TPC-H queries against single-node DataFusion and DuckDB, plus latency and streaming
    Tpch(TpchArgs),
}

#[derive(clap::Args, Clone)]
pub struct TpchArgs {
    /// TPC-H scale factor
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Executors in the in-process cluster
    #[arg(long, default_value_t = 3)]
    pub executors: usize,
    /// Untimed runs of each query before the timed ones
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Timed runs of each query (the median is reported)
    #[arg(long, default_value_t = 3)]
    pub repetitions: usize,
    /// Only these queries, e.g. q01,q18
    #[arg(long, value_delimiter = ',')]
    pub queries: Vec<String>,
    /// Where data and the cluster live (default: <user data dir>/shoal/bench); reused across runs
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Where the CSV files go
    #[arg(long, default_value = "bench-results")]
    pub out: PathBuf,
    /// Memory each executor may use, e.g. 2GiB (default: unlimited)
    #[arg(long)]
    pub executor_memory: Option<ByteSize>,
    /// Skip DuckDB (otherwise it runs in the venv scripts/python-venv.sh makes)
    #[arg(long)]
    pub no_duckdb: bool,
    /// Skip the latency and streaming measurements
    #[arg(long)]
    pub no_latency: bool,
}

pub async fn run(args: BenchArgs) -> Result<(), Error> {
    match args.suite {
        BenchSuite::Tpch(args) => run_tpch(args).await,
    }
}

async fn run_tpch(args: TpchArgs) -> Result<(), Error> {
    let base = args.data_dir.clone().unwrap_or_else(|| {
        dirs::data_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("shoal")
            .join("bench")
    });
    let cluster_dir = base.join(format!("sf{}", args.scale));
    std::fs::create_dir_all(&cluster_dir)?;
    let options = LocalClusterOptions {
        executors: args.executors,
        port: 0,
        executor_memory: MemoryConfig {
            limit: args.executor_memory.map(|b| b.0),
            spill: true,
        },
        pg_port: None,
        pg_auth: shoal_coordinator::PgAuth::Trust,
        flight_password: None,
    };
    eprintln!(
        "TPC-H scale {}: 1 coordinator and {} executors, data in {}",
        args.scale,
        args.executors,
        cluster_dir.display()
    );
    let cluster = LocalCluster::start(&cluster_dir, &options).await?;
    let outcome = bench_cluster(&args, &cluster, &cluster_dir).await;
    cluster.shutdown().await;
    let report = outcome?;
    report.print();
    let written = report.write_csv(&args.out)?;
    for path in written {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

async fn bench_cluster(
    args: &TpchArgs,
    cluster: &LocalCluster,
    cluster_dir: &Path,
) -> Result<Report, Error> {
    crate::demo::load_tpch(&cluster.url, cluster_dir, args.scale).await?;
    let files = cluster_dir.join(format!("tpch-sf{}", args.scale));
    let queries: Vec<(String, String)> = tpch::queries(args.scale)
        .into_iter()
        .filter(|(name, _)| args.queries.is_empty() || args.queries.contains(name))
        .collect();

    let single = SessionContext::new();
    for table in tpch::TABLES {
        let path = tpch::parquet_path(&files, table);
        single
            .register_parquet(
                table,
                path.to_string_lossy().as_ref(),
                ParquetReadOptions::default(),
            )
            .await?;
    }
    let client = SqlClient::connect(&cluster.url, None).await?;
    let mut rows = Vec::new();
    for (name, sql) in &queries {
        eprint!("{name}: Shoal");
        let (shoal, shoal_result) = time_runs(args, || {
            let mut client = client.clone();
            async move { latency::run(&mut client, sql).await }
        })
        .await?;
        eprint!(", DataFusion");
        let (datafusion, single_result) = time_runs(args, || {
            let single = single.clone();
            async move { Ok(single.sql(sql).await?.collect().await?) }
        })
        .await?;
        let matches = canonical_rows(&shoal_result) == canonical_rows(&single_result);
        eprintln!("{}", if matches { "" } else { "  RESULTS DIFFER" });
        rows.push(QueryRow {
            name: name.clone(),
            rows: shoal_result.iter().map(|b| b.num_rows()).sum(),
            matches,
            shoal: stats::median(&shoal),
            datafusion: stats::median(&datafusion),
            duckdb: None,
        });
    }

    let mut duckdb_note = None;
    if !args.no_duckdb {
        eprintln!("DuckDB ...");
        let repo = std::env::current_dir()?;
        let timed = match crate::python_venv::venv_python(&repo) {
            Ok(python) => duckdb::run(
                &python,
                &repo,
                &files,
                &queries,
                args.warmup,
                args.repetitions,
            ),
            Err(e) => Err(e),
        };
        match timed {
            Ok(timings) => {
                for (name, result) in timings {
                    if let Some(row) = rows.iter_mut().find(|r| r.name == name) {
                        row.duckdb = result.ok().map(|t| stats::median(&t));
                    }
                }
            }
            Err(e) => duckdb_note = Some(format!("DuckDB skipped: {e}")),
        }
    }

    let mut report = Report {
        scale: args.scale,
        executors: args.executors,
        queries: rows,
        latency: Vec::new(),
        stream: None,
        notes: duckdb_note.into_iter().collect(),
    };
    if !args.no_latency {
        eprintln!("Latency ...");
        // Order keys are sparse: the first 8 of every 32 exist, so 32 * g + 1 is a key for
        // every group g below orders / 8.
        let groups = ((args.scale * 1_500_000.0) as usize / 8).max(1);
        let count: Arc<dyn Fn(usize) -> String + Send + Sync> =
            Arc::new(|_| "SELECT count(*) FROM nation".to_string());
        let lookup: Arc<dyn Fn(usize) -> String + Send + Sync> = Arc::new(move |i| {
            format!(
                "SELECT * FROM orders WHERE o_orderkey = {}",
                32 * (i * 7919 % groups) + 1
            )
        });
        for clients in [1, 16] {
            let requests = if clients == 1 { 200 } else { 25 };
            for (name, sql) in [
                ("count(*) nation", &count),
                ("point lookup orders", &lookup),
            ] {
                report.latency.push(
                    latency::measure(&cluster.url, name, clients, requests, Arc::clone(sql))
                        .await?,
                );
            }
        }
        eprintln!("Streaming lineitem ...");
        report.stream = Some(latency::stream(&cluster.url, "SELECT * FROM lineitem").await?);
    }
    Ok(report)
}

/// `warmup` untimed runs, then `repetitions` timed ones; returns the times and the last result.
async fn time_runs<F, Fut>(
    args: &TpchArgs,
    mut run: F,
) -> Result<(Vec<Duration>, Vec<arrow::array::RecordBatch>), Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<arrow::array::RecordBatch>, Error>>,
{
    for _ in 0..args.warmup {
        run().await?;
    }
    let mut times = Vec::new();
    let mut last = Vec::new();
    for _ in 0..args.repetitions.max(1) {
        let started = Instant::now();
        last = run().await?;
        times.push(started.elapsed());
    }
    Ok((times, last))
}
