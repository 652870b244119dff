//! psql against the Postgres wire protocol: `psql -c`, `\dt`, `\d TABLE`, `\l`, distributed
//! plans through that port, and the cleartext and SCRAM password exchanges.

use std::net::SocketAddr;

use shoal::local_cluster::LocalClusterOptions;
use shoal_coordinator::PgAuth;

use crate::common::{TestCluster, within};

/// What one psql run printed, and whether it succeeded.
struct Psql {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `psql` (unaligned, tuples only, no psqlrc) with `args` against `address`.
async fn psql(address: SocketAddr, password: Option<&str>, args: &[&str]) -> Psql {
    let mut command = tokio::process::Command::new("psql");
    command
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-w"])
        .args(["-h", &address.ip().to_string()])
        .args(["-p", &address.port().to_string()])
        .args(["-U", "analyst", "-d", "shoal"])
        .args(args)
        .env_remove("PGPASSWORD")
        .kill_on_drop(true);
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let output = within(60, "psql", command.output())
        .await
        .expect("psql (the PostgreSQL client) is installed");
    Psql {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn psql_ok(address: SocketAddr, args: &[&str]) -> String {
    let run = psql(address, None, args).await;
    assert!(
        run.ok,
        "psql {args:?} failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    run.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn psql_queries_and_describes_tables() {
    let cluster = TestCluster::start(3).await;
    let pg = cluster.pg_address();

    let out = psql_ok(
        pg,
        &[
            "-c",
            "CREATE TABLE orders (o_id BIGINT NOT NULL, o_customer VARCHAR, o_total DOUBLE, o_day DATE) WITH (distribution = 'o_id', shards = 6)",
            "-c",
            "INSERT INTO orders SELECT value, 'c' || (value % 7), value * 1.5, DATE '2024-01-01' FROM generate_series(1, 1000)",
            "-c",
            "SELECT count(*), sum(o_id) FROM orders",
        ],
    )
    .await;
    assert_eq!(out.lines().last(), Some("1000|500500"), "{out}");

    // Queries through this port are planned like any other: distributed over the executors.
    let plan = psql_ok(
        pg,
        &[
            "-c",
            "EXPLAIN SELECT o_customer, count(*) FROM orders GROUP BY o_customer",
        ],
    )
    .await;
    assert!(plan.contains("ShardScanExec"), "{plan}");
    assert!(plan.contains("executor=http://127.0.0.1:"), "{plan}");

    let tables = psql_ok(pg, &["-c", "\\dt"]).await;
    assert!(
        tables.lines().any(|l| l.starts_with("public|orders|table")),
        "{tables}"
    );

    let described = psql_ok(pg, &["-c", "\\d orders"]).await;
    for expected in [
        "o_id|bigint",
        "o_customer|text",
        "o_total|double precision",
        "o_day|date",
    ] {
        assert!(
            described.lines().any(|l| l.starts_with(expected)),
            "{expected} in:\n{described}"
        );
    }

    let databases = psql_ok(pg, &["-c", "\\l"]).await;
    assert!(
        databases.lines().any(|l| l.starts_with("shoal|")),
        "{databases}"
    );

    // Errors come back as psql shows Postgres errors, and the exit status says so.
    let failed = psql(pg, None, &["-c", "SELECT * FROM missing_table"]).await;
    assert!(!failed.ok);
    assert!(
        failed.stderr.contains("ERROR:") && failed.stderr.contains("missing_table"),
        "{}",
        failed.stderr
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn psql_logs_in_with_scram_and_cleartext_passwords() {
    for (auth, method) in [
        (
            PgAuth::Scram {
                password: "s3cret".into(),
            },
            "SCRAM",
        ),
        (
            PgAuth::Cleartext {
                password: "s3cret".into(),
            },
            "cleartext",
        ),
    ] {
        let mut options = LocalClusterOptions::new(1);
        options.pg_auth = auth;
        let cluster = TestCluster::start_with(options).await;
        let pg = cluster.pg_address();

        let right = psql(pg, Some("s3cret"), &["-c", "SELECT 40 + 2"]).await;
        assert!(right.ok, "{method}: {}", right.stderr);
        assert_eq!(right.stdout.trim(), "42", "{method}");

        let wrong = psql(pg, Some("guess"), &["-c", "SELECT 1"]).await;
        assert!(!wrong.ok, "{method}: a wrong password was accepted");
        assert!(
            wrong
                .stderr
                .to_lowercase()
                .contains("password authentication failed"),
            "{method}: {}",
            wrong.stderr
        );

        let none = psql(pg, None, &["-c", "SELECT 1"]).await;
        assert!(!none.ok, "{method}: no password was accepted");
        cluster.shutdown().await;
    }
}
