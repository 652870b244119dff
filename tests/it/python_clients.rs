//! The Python client suites in tests/python (ADBC Flight SQL from PyPI, raw pyarrow.flight,
//! flightsql-dbapi, psycopg over the Postgres wire protocol), run with pytest in the venv
//! `scripts/python-venv.sh` makes, against a real 3-executor cluster.

use std::path::Path;
use std::process::Stdio;

use shoal::local_cluster::LocalClusterOptions;

use crate::common::{TestCluster, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn python_adbc_and_flight_clients() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = shoal::python_venv::venv_python(repo).expect("the project's venv script works");
    let cluster = TestCluster::start(3).await;
    let mut with_password = LocalClusterOptions::new(1);
    with_password.flight_password = Some("s3cret".into());
    with_password.pg_port = None;
    let guarded = TestCluster::start_with(with_password).await;
    let output = within(
        600,
        "the Python client suites",
        tokio::process::Command::new(&python)
            .args([
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "tests/python",
            ])
            .current_dir(repo)
            .env("SHOAL_FLIGHT_URI", cluster.url())
            .env("SHOAL_GUARDED_FLIGHT_URI", guarded.url())
            .env("SHOAL_GUARDED_PASSWORD", "s3cret")
            .env("SHOAL_PG_HOST", cluster.pg_address().ip().to_string())
            .env("SHOAL_PG_PORT", cluster.pg_address().port().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("pytest starts");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    assert!(
        output.status.success(),
        "the Python client suites failed:\n{report}"
    );
    cluster.shutdown().await;
    guarded.shutdown().await;
}
