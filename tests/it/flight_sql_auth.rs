//! A coordinator started with a Flight SQL password: Handshake with Basic credentials (padded
//! or, as Go clients send them, not) earns a bearer token; missing or wrong credentials are
//! UNAUTHENTICATED with a readable message; `shoal sql --password` logs in.

use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt};
use arrow_flight::{FlightDescriptor, HandshakeRequest};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use futures::TryStreamExt;
use prost::Message;
use shoal::local_cluster::LocalClusterOptions;
use tonic::transport::Channel;
use tonic::{Code, Request};

use crate::common::{TestCluster, within};

fn query(sql: &str) -> Request<FlightDescriptor> {
    let command = CommandStatementQuery {
        query: sql.to_string(),
        transaction_id: None,
    };
    Request::new(FlightDescriptor::new_cmd(command.as_any().encode_to_vec()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_password_protected_coordinator_admits_only_clients_that_know_it() {
    let mut options = LocalClusterOptions::new(1);
    options.flight_password = Some("s3cret".into());
    let cluster = TestCluster::start_with(options).await;
    let url = cluster.url().to_string();
    let channel = Channel::from_shared(url.replace("grpc://", "http://"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    within(60, "authentication", async {
        // The right password: the bearer token from Handshake carries the later calls.
        let mut client = FlightSqlServiceClient::new(channel.clone());
        client.handshake("ada", "s3cret").await.unwrap();
        let info = client
            .execute("SELECT 41 + 1 AS x".into(), None)
            .await
            .unwrap();
        let ticket = info.endpoint[0].ticket.clone().unwrap();
        let batches: Vec<_> = client
            .do_get(ticket)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(batches[0].num_rows(), 1);

        // A wrong password fails the Handshake.
        let mut wrong = FlightSqlServiceClient::new(channel.clone());
        let error = wrong
            .handshake("ada", "guess")
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("invalid user name or password"), "{error}");

        // No credentials, or a made-up token: UNAUTHENTICATED.
        let mut raw = FlightServiceClient::new(channel.clone());
        let missing = raw.get_flight_info(query("SELECT 1")).await.unwrap_err();
        assert_eq!(missing.code(), Code::Unauthenticated);
        assert!(
            missing.message().contains("requires a password"),
            "{missing}"
        );
        let mut forged = query("SELECT 1");
        forged
            .metadata_mut()
            .insert("authorization", "Bearer 0123".parse().unwrap());
        let forged = raw.get_flight_info(forged).await.unwrap_err();
        assert_eq!(forged.code(), Code::Unauthenticated);

        // Go clients send Basic credentials without base64 padding.
        let basic = format!("Basic {}", STANDARD_NO_PAD.encode("go:s3cret"));
        assert!(!basic.ends_with('='));
        let mut handshake = Request::new(futures::stream::iter(vec![HandshakeRequest::default()]));
        handshake
            .metadata_mut()
            .insert("authorization", basic.parse().unwrap());
        let answer = raw.handshake(handshake).await.unwrap();
        let bearer = answer.metadata().get("authorization").unwrap().clone();
        let mut call = query("SELECT 1");
        call.metadata_mut().insert("authorization", bearer);
        raw.get_flight_info(call).await.unwrap();
    })
    .await;

    // The CLI logs in with --password, and says why it cannot without one.
    let shoal = env!("CARGO_BIN_EXE_shoal");
    let with_password = within(
        60,
        "shoal sql --password",
        tokio::process::Command::new(shoal)
            .args([
                "sql",
                "--url",
                &url,
                "--password",
                "s3cret",
                "-c",
                "SELECT 6 * 7 AS answer",
            ])
            .env_remove("SHOAL_PASSWORD")
            .output(),
    )
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&with_password.stdout);
    assert!(with_password.status.success(), "{stdout}");
    assert!(stdout.contains("42"), "{stdout}");
    let without = within(
        60,
        "shoal sql without a password",
        tokio::process::Command::new(shoal)
            .args(["sql", "--url", &url, "-c", "SELECT 1"])
            .env_remove("SHOAL_PASSWORD")
            .output(),
    )
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert!(!without.status.success());
    assert!(stderr.contains("requires a password"), "{stderr}");

    // Admin actions need the password too.
    for (password, ok) in [(None, false), (Some("s3cret"), true)] {
        let mut admin = tokio::process::Command::new(shoal);
        admin
            .args(["admin", "--url", &url])
            .env_remove("SHOAL_PASSWORD");
        if let Some(password) = password {
            admin.args(["--password", password]);
        }
        let output = within(60, "shoal admin status", admin.arg("status").output())
            .await
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(output.status.success(), ok, "{text}");
        if !ok {
            assert!(text.contains("requires a password"), "{text}");
        }
    }
    cluster.shutdown().await;
}
