//! Short-query latency at 1 and 16 concurrent clients, and the rate of streaming a whole table,
//! all over Flight SQL as a client sees them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use datafusion::common::utils::memory::get_record_batch_memory_size;

use crate::bench::stats::percentile;
use crate::cli::client::SqlClient;
use crate::local_cluster::Error;

pub struct LatencyResult {
    pub name: String,
    pub clients: usize,
    pub requests: usize,
    pub p50: Duration,
    pub p99: Duration,
}

pub struct StreamResult {
    pub rows: usize,
    pub bytes: usize,
    pub elapsed: Duration,
}

impl StreamResult {
    pub fn rows_per_second(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64()
    }

    /// Megabytes (10^6) of Arrow data per second.
    pub fn mb_per_second(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64() / 1e6
    }
}

/// Runs the statements `make_sql(i)` for `i` in `0..requests_per_client` on each of `clients`
/// connections at once, timing each from request to last batch.
pub async fn measure(
    url: &str,
    name: &str,
    clients: usize,
    requests_per_client: usize,
    make_sql: Arc<dyn Fn(usize) -> String + Send + Sync>,
) -> Result<LatencyResult, Error> {
    let mut tasks = Vec::new();
    for client_index in 0..clients {
        let url = url.to_string();
        let make_sql = Arc::clone(&make_sql);
        tasks.push(tokio::spawn(async move {
            let mut client = SqlClient::connect(&url, None).await?;
            // One untimed request: connection setup is not query latency.
            run(&mut client, &make_sql(client_index)).await?;
            let mut samples = Vec::with_capacity(requests_per_client);
            for i in 0..requests_per_client {
                let sql = make_sql(client_index * requests_per_client + i);
                let started = Instant::now();
                run(&mut client, &sql).await?;
                samples.push(started.elapsed());
            }
            Ok::<_, Error>(samples)
        }));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await??);
    }
    Ok(LatencyResult {
        name: name.to_string(),
        clients,
        requests: samples.len(),
        p50: percentile(&samples, 50.0),
        p99: percentile(&samples, 99.0),
    })
}

/// Streams every row of `sql` to this client and reports the rate.
pub async fn stream(url: &str, sql: &str) -> Result<StreamResult, Error> {
    let mut client = SqlClient::connect(url, None).await?;
    let started = Instant::now();
    let mut results = client.execute(sql).await?;
    let (mut rows, mut bytes) = (0, 0);
    while let Some(batch) = results.next_batch().await? {
        rows += batch.num_rows();
        bytes += get_record_batch_memory_size(&batch);
    }
    Ok(StreamResult {
        rows,
        bytes,
        elapsed: started.elapsed(),
    })
}

/// Runs `sql` to completion and returns its batches.
pub async fn run(client: &mut SqlClient, sql: &str) -> Result<Vec<RecordBatch>, Error> {
    let mut results = client.execute(sql).await.map_err(|e| {
        format!(
            "{}: {}",
            first_line(sql),
            crate::cli::errors::error_message(&e)
        )
    })?;
    let mut batches = Vec::new();
    while let Some(batch) = results.next_batch().await.map_err(|e| {
        format!(
            "{}: {}",
            first_line(sql),
            crate::cli::errors::error_message(&e)
        )
    })? {
        batches.push(batch);
    }
    Ok(batches)
}

fn first_line(sql: &str) -> &str {
    sql.trim().lines().next().unwrap_or("")
}
