//! Flight SQL, the coordinator's front door for ADBC, JDBC, dashboards and Shoal's own CLI.

pub mod auth;
pub mod exports;
pub mod front_door;
pub mod metadata;
pub mod placeholders;
pub mod prepared;
pub mod service;
pub mod sessions;
pub mod tickets;
pub mod uploads;

pub use auth::FlightAuth;
pub use front_door::FrontDoor;
pub use service::ShoalFlightSqlService;
