//! How a Postgres client proves itself at startup: not at all (trust), or with one shared
//! password sent as cleartext or checked by SCRAM-SHA-256. Any user name is accepted until
//! Shoal has users of its own.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::ClientInfo;
use pgwire::api::auth::cleartext::CleartextPasswordAuthStartupHandler;
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::{SCRAM_ITERATIONS, ScramAuth, gen_salted_password};
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

/// The startup check every Postgres connection passes.
#[derive(Clone)]
pub enum PgAuth {
    /// No password is asked for.
    Trust,
    /// The client sends the password as is (use only on a trusted network).
    Cleartext { password: String },
    /// SCRAM-SHA-256: the password never crosses the wire.
    Scram { password: String },
}

impl Debug for PgAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PgAuth::Trust => "trust",
            PgAuth::Cleartext { .. } => "cleartext password",
            PgAuth::Scram { .. } => "scram-sha-256",
        })
    }
}

impl PgAuth {
    /// The handler for one connection (SCRAM keeps its exchange's state in it).
    pub(super) fn startup_handler(&self) -> Startup {
        match self {
            PgAuth::Trust => Startup::Trust(Trust),
            PgAuth::Cleartext { password } => {
                Startup::Cleartext(CleartextPasswordAuthStartupHandler::new(
                    SharedPassword {
                        password: password.clone(),
                    },
                    server_parameters(),
                ))
            }
            PgAuth::Scram { password } => {
                let salt: [u8; 16] = rand::random();
                let salted = gen_salted_password(password, &salt, SCRAM_ITERATIONS);
                let mut scram = ScramAuth::new(Arc::new(SaltedPassword {
                    salt: salt.to_vec(),
                    salted,
                }));
                scram.set_iterations(SCRAM_ITERATIONS);
                Startup::Scram(
                    SASLAuthStartupHandler::new(Arc::new(server_parameters())).with_scram(scram),
                )
            }
        }
    }
}

/// What the server tells a client about itself after login.
fn server_parameters() -> DefaultServerParameterProvider {
    let mut parameters = DefaultServerParameterProvider::default();
    parameters.server_version = format!("16.6 (Shoal {})", env!("CARGO_PKG_VERSION"));
    parameters
}

/// One connection's startup handler.
pub(super) enum Startup {
    Trust(Trust),
    Cleartext(CleartextPasswordAuthStartupHandler<SharedPassword, DefaultServerParameterProvider>),
    Scram(SASLAuthStartupHandler<DefaultServerParameterProvider>),
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match self {
            Startup::Trust(h) => h.on_startup(client, message).await,
            Startup::Cleartext(h) => h.on_startup(client, message).await,
            Startup::Scram(h) => h.on_startup(client, message).await,
        }
    }
}

/// Accepts every client without a password.
pub(super) struct Trust;

impl NoopStartupHandler for Trust {}

/// The shared password, for cleartext comparison.
#[derive(Debug)]
pub(super) struct SharedPassword {
    password: String,
}

#[async_trait]
impl AuthSource for SharedPassword {
    async fn get_password(&self, _login: &LoginInfo) -> PgWireResult<Password> {
        Ok(Password::new(None, self.password.as_bytes().to_vec()))
    }
}

/// The shared password salted and hashed for SCRAM (RFC 5802's SaltedPassword).
struct SaltedPassword {
    salt: Vec<u8>,
    salted: Vec<u8>,
}

impl Debug for SaltedPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SaltedPassword")
    }
}

#[async_trait]
impl AuthSource for SaltedPassword {
    async fn get_password(&self, _login: &LoginInfo) -> PgWireResult<Password> {
        Ok(Password::new(Some(self.salt.clone()), self.salted.clone()))
    }
}
