//! Shoal's integration tests: real clusters on 127.0.0.1 port 0, talked to through Flight SQL
//! and the Postgres wire protocol.

mod cancellation;
mod chaos;
mod common;
mod compose;
mod durability;
mod errors;
mod executor_endpoints;
mod flight_sql_auth;
mod flight_sql_metadata;
mod memory;
mod plan_text;
mod plans;
mod postgres_wire;
mod python_clients;
mod slt_db;
mod slt_format;
mod sql_basics;
mod sqllogictest;
mod tpch_differential;
