//! Shoal's integration tests: real clusters on 127.0.0.1 port 0, talked to only through Flight SQL.

mod common;
mod durability;
mod errors;
mod flight_sql_metadata;
mod sql_basics;
mod tpch_differential;
