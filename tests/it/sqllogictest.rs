//! Runs every `tests/slt/*.slt` file against a real cluster (a coordinator and 3 executors on
//! 127.0.0.1:0), once per table layout, with each query diffed against single-node DataFusion.
//!
//! Files write `shards = $shards` in their CREATE TABLE options; the layouts below set it.
//! `SHOAL_SLT_FILTER=join` runs only files whose name contains `join`;
//! `SHOAL_SLT_COMPLETE=1` rewrites the expected results from Shoal's answers (review the diff:
//! differential mode still fails on any answer DataFusion disagrees with).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sqllogictest::{Runner, default_normalizer, default_validator, strict_column_validator};

use crate::common::{TestCluster, within};
use crate::slt_db::{Mismatches, ShoalDb, SltError};

/// (name, shard count): every table in one shard, and more shards than executors.
const LAYOUTS: [(&str, usize); 2] = [("one_shard", 1), ("many_shards", 7)];

fn slt_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let filter = std::env::var("SHOAL_SLT_FILTER").unwrap_or_default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(&filter))
        .collect();
    files.sort();
    files
}

async fn run_file(
    file: &Path,
    layout: &str,
    shards: usize,
    mismatches: &Mismatches,
    complete: bool,
) -> Result<(), String> {
    let cluster = TestCluster::start(3).await;
    let url = cluster.url().to_string();
    let label = format!("{} / {layout}", file.file_name().unwrap().to_string_lossy());
    let mismatches = Arc::clone(mismatches);
    let mut runner = Runner::new(move || {
        let url = url.clone();
        let label = label.clone();
        let mismatches = Arc::clone(&mismatches);
        async move { Ok::<_, SltError>(ShoalDb::connect(&url, label, mismatches).await) }
    });
    runner.set_var("shards".into(), shards.to_string());
    runner.with_column_validator(strict_column_validator);
    let outcome = if complete {
        runner
            .update_test_file(
                file,
                " ",
                default_validator,
                default_normalizer,
                strict_column_validator,
            )
            .await
            .map_err(|e| e.to_string())
    } else {
        runner
            .run_file_async(file)
            .await
            .map_err(|e| e.display(true).to_string())
    };
    cluster.shutdown().await;
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqllogictest_suite() {
    let files = slt_files();
    assert!(!files.is_empty(), "no .slt files matched");
    let complete = std::env::var("SHOAL_SLT_COMPLETE").is_ok_and(|v| v == "1");
    let layouts: &[(&str, usize)] = if complete { &LAYOUTS[..1] } else { &LAYOUTS };
    let mismatches: Mismatches = Arc::new(Mutex::new(Vec::new()));
    let mut failures = Vec::new();
    for file in &files {
        for (layout, shards) in layouts {
            let name = file.file_name().unwrap().to_string_lossy().to_string();
            let outcome = within(
                600,
                &format!("{name} ({layout})"),
                run_file(file, layout, *shards, &mismatches, complete),
            )
            .await;
            if let Err(error) = outcome {
                failures.push(format!("{name} ({layout}):\n{error}"));
            }
        }
    }
    let mismatches = mismatches.lock().expect("lock");
    assert!(
        failures.is_empty() && mismatches.is_empty(),
        "{} file runs failed:\n{}\n\n{} answers differ from single-node DataFusion:\n{}",
        failures.len(),
        failures.join("\n\n"),
        mismatches.len(),
        mismatches.join("\n")
    );
}
