//! TPC-H: all 22 queries through Flight SQL on a 3-executor cluster equal single-node
//! DataFusion on the same Parquet files (floats compared with a small tolerance).

use arrow::array::{Array, Float32Array, Float64Array, RecordBatch};
use arrow::datatypes::DataType;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use shoal::tpch;

use crate::common::{TestCluster, rows, scanned_shards, within};
use crate::plan_text::{stage_of, without_addresses};

const SCALE: f64 = 0.01;

/// A result as sorted rows; float cells are kept aside for tolerant comparison.
fn normalize(batches: &[RecordBatch]) -> Vec<(Vec<String>, Vec<f64>)> {
    let text = rows(batches);
    let mut floats: Vec<Vec<f64>> = vec![Vec::new(); text.len()];
    let mut float_columns = Vec::new();
    if let Some(first) = batches.first() {
        for (i, field) in first.schema().fields().iter().enumerate() {
            if matches!(field.data_type(), DataType::Float64 | DataType::Float32) {
                float_columns.push(i);
            }
        }
    }
    let mut row = 0;
    for batch in batches {
        for r in 0..batch.num_rows() {
            for &c in &float_columns {
                let col = batch.column(c);
                let v = if col.is_null(r) {
                    f64::NAN
                } else if let Some(a) = col.as_any().downcast_ref::<Float64Array>() {
                    a.value(r)
                } else {
                    col.as_any()
                        .downcast_ref::<Float32Array>()
                        .expect("float")
                        .value(r) as f64
                };
                floats[row].push(v);
            }
            row += 1;
        }
    }
    let mut out: Vec<(Vec<String>, Vec<f64>)> = text
        .into_iter()
        .zip(floats)
        .map(|(mut cells, fl)| {
            for &c in &float_columns {
                cells[c] = String::new();
            }
            (cells, fl)
        })
        .collect();
    out.sort_by(|a, b| {
        a.0.cmp(&b.0).then_with(|| {
            a.1.iter()
                .zip(&b.1)
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    });
    out
}

/// `Err` describes the first difference between the two results.
fn compare(name: &str, shoal: &[RecordBatch], single: &[RecordBatch]) -> Result<(), String> {
    let (a, b) = (normalize(shoal), normalize(single));
    if a.len() != b.len() {
        return Err(format!(
            "{name}: Shoal returned {} rows, DataFusion {}",
            a.len(),
            b.len()
        ));
    }
    for (i, ((ta, fa), (tb, fb))) in a.iter().zip(&b).enumerate() {
        if ta != tb {
            return Err(format!("{name}: row {i} differs: {ta:?} vs {tb:?}"));
        }
        for (x, y) in fa.iter().zip(fb) {
            let tolerance = 1e-6 * x.abs().max(y.abs()).max(1.0);
            if !((x - y).abs() <= tolerance || (x.is_nan() && y.is_nan())) {
                return Err(format!("{name}: row {i}: {x} vs {y}"));
            }
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tpch_queries_match_single_node_datafusion() {
    let cluster = TestCluster::start(3).await;
    let data = cluster.dir.path().join("tpch");
    let dir = data.clone();
    within(120, "generate TPC-H", async {
        tokio::task::spawn_blocking(move || tpch::generate_parquet(&dir, SCALE))
            .await
            .unwrap()
            .unwrap()
    })
    .await;

    let client = cluster.client().await;
    let single = SessionContext::new();
    for table in tpch::TABLES {
        client.ok(tpch::create_table_sql(table)).await;
        let path = tpch::parquet_path(&data, table);
        let loaded = client
            .scalar(&format!("COPY {table} FROM '{}'", path.display()))
            .await;
        single
            .register_parquet(table, path.to_str().unwrap(), ParquetReadOptions::default())
            .await
            .unwrap();
        let expected = single
            .sql(&format!("SELECT count(*) FROM {table}"))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(loaded, rows(&expected)[0][0], "{table}: rows loaded");
    }

    // Pruning: a point lookup on the distribution key reads one of lineitem's shards.
    let plan = client
        .explain("SELECT * FROM lineitem WHERE l_orderkey = 42")
        .await;
    let scans: Vec<&str> = plan
        .lines()
        .filter(|l| l.contains("ShardScanExec: table=lineitem"))
        .collect();
    assert_eq!(scans.len(), 1, "one scan task: {plan}");
    assert!(scans[0].contains("] of 3"), "{plan}");
    assert_eq!(scanned_shards(scans[0]), 1, "{plan}");
    let lookup =
        "SELECT l_linenumber, l_quantity FROM lineitem WHERE l_orderkey = 42 ORDER BY l_linenumber";
    let expected = single.sql(lookup).await.unwrap().collect().await.unwrap();
    assert_eq!(rows(&client.ok(lookup).await), rows(&expected));

    // Co-location: orders and lineitem are both distributed on the order key with the same
    // shard count, so Q3 and Q18 join them inside one stage, with no network boundary between.
    let queries = tpch::queries(SCALE);
    for name in ["q03", "q18"] {
        let sql = &queries.iter().find(|(n, _)| n == name).expect("query").1;
        let plan = client.explain(sql).await;
        let lineitem = stage_of(&plan, "table=lineitem");
        assert!(lineitem.is_some(), "{name}: {plan}");
        assert_eq!(lineitem, stage_of(&plan, "table=orders"), "{name}: {plan}");
        insta::assert_snapshot!(format!("tpch_{name}_plan"), without_addresses(&plan));
    }

    let mut failures = Vec::new();
    for (name, sql) in queries {
        let expected = match single.sql(&sql).await {
            Ok(df) => df
                .collect()
                .await
                .unwrap_or_else(|e| panic!("{name} on DataFusion: {e}")),
            Err(e) => panic!("{name} on DataFusion: {e}"),
        };
        match client.query(&sql).await {
            Ok(actual) => {
                if let Err(difference) = compare(&name, &actual, &expected) {
                    failures.push(difference);
                }
            }
            Err(status) => {
                failures.push(format!("{name}: {:?}: {}", status.code(), status.message()))
            }
        }
    }
    cluster.shutdown().await;
    assert!(
        failures.is_empty(),
        "TPC-H differences:\n{}",
        failures.join("\n")
    );
}
