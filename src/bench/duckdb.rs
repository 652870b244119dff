//! DuckDB as a second reference: the project's venv script installs it, and a Python script
//! times the same queries over the same Parquet files.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::local_cluster::Error;

/// Per query: the timed runs, or the error DuckDB gave.
pub type DuckDbTimings = Vec<(String, Result<Vec<Duration>, String>)>;

pub fn run(
    python: &str,
    repo: &Path,
    data_dir: &Path,
    queries: &[(String, String)],
    warmup: usize,
    repetitions: usize,
) -> Result<DuckDbTimings, Error> {
    let list = tempfile::NamedTempFile::new()?;
    serde_json::to_writer(&list, queries)?;
    let output = Command::new(python)
        .arg(repo.join("scripts/bench_duckdb.py"))
        .arg(data_dir)
        .arg(list.path())
        .arg(warmup.to_string())
        .arg(repetitions.to_string())
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "DuckDB benchmark failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }
    let mut timings = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let record: Value = serde_json::from_str(line)?;
        let name = record["query"].as_str().unwrap_or_default().to_string();
        let result = match record["seconds"].as_array() {
            Some(seconds) => Ok(seconds
                .iter()
                .filter_map(Value::as_f64)
                .map(Duration::from_secs_f64)
                .collect()),
            None => Err(record["error"].as_str().unwrap_or("failed").to_string()),
        };
        timings.push((name, result));
    }
    Ok(timings)
}
