//! The Postgres wire protocol on its own port, for psql, psycopg and BI tools built for
//! PostgreSQL. Statements go through the same [`QueryEngine`](crate::query_engine::QueryEngine)
//! as Flight SQL, so they run distributed like any other; pgwire speaks the protocol and
//! arrow-pg turns Arrow batches into Postgres rows.

mod auth;
mod cancels;
mod handler;
mod server;
mod sqlstate;
mod statements;

pub use auth::PgAuth;
pub use server::serve;
