//! Flight SQL sessions: `SetSessionOptions`, `GetSessionOptions` and `CloseSession` (sent by
//! the JDBC driver for its `catalog=`/`schema=` properties; `shoal.endpoints` chooses where
//! results are read from), keyed by the
//! `arrow_flight_session_id` cookie the spec suggests.
//!
//! arrow-flight 59 does not generate these messages, so they are declared here from
//! Flight.proto with the same field numbers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::{Message, Oneof};
use tonic::Status;
use tonic::metadata::MetadataMap;

use super::exports::{ENDPOINTS_OPTION, ResultEndpoints};
use crate::catalog_provider::{SHOAL_CATALOG, SHOAL_SCHEMA};
use crate::query_engine::KNOWN_SCHEMAS;

pub const SET_SESSION_OPTIONS: &str = "SetSessionOptions";
pub const GET_SESSION_OPTIONS: &str = "GetSessionOptions";
pub const CLOSE_SESSION: &str = "CloseSession";
const COOKIE: &str = "arrow_flight_session_id";
/// A session nobody used for this long is forgotten.
const IDLE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone, PartialEq, Message)]
pub struct SessionOptionValue {
    #[prost(oneof = "OptionValue", tags = "1, 2, 3, 4, 5")]
    pub option_value: Option<OptionValue>,
}

#[derive(Clone, PartialEq, Oneof)]
pub enum OptionValue {
    #[prost(string, tag = "1")]
    StringValue(String),
    #[prost(bool, tag = "2")]
    BoolValue(bool),
    #[prost(sfixed64, tag = "3")]
    Int64Value(i64),
    #[prost(double, tag = "4")]
    DoubleValue(f64),
    #[prost(message, tag = "5")]
    StringListValue(StringListValue),
}

#[derive(Clone, PartialEq, Message)]
pub struct StringListValue {
    #[prost(string, repeated, tag = "1")]
    pub values: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SetSessionOptionsRequest {
    #[prost(map = "string, message", tag = "1")]
    pub session_options: HashMap<String, SessionOptionValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SetSessionOptionsResult {
    #[prost(map = "string, message", tag = "1")]
    pub errors: HashMap<String, SetSessionOptionError>,
}

#[derive(Clone, Copy, PartialEq, Message)]
pub struct SetSessionOptionError {
    /// 1: invalid name, 2: invalid value, 3: cannot be set.
    #[prost(int32, tag = "1")]
    pub value: i32,
}

const INVALID_NAME: i32 = 1;
const INVALID_VALUE: i32 = 2;

#[derive(Clone, PartialEq, Message)]
pub struct GetSessionOptionsResult {
    #[prost(map = "string, message", tag = "1")]
    pub session_options: HashMap<String, SessionOptionValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CloseSessionResult {
    /// 1: closed.
    #[prost(int32, tag = "1")]
    pub status: i32,
}

/// The options of one session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Session {
    /// Where unqualified table names resolve; `None` means `public`.
    pub schema: Option<String>,
    /// Where query results are read from (option `shoal.endpoints`).
    pub endpoints: ResultEndpoints,
}

struct Entry {
    session: Session,
    last_used: Instant,
}

#[derive(Clone, Default)]
pub struct Sessions {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

impl Sessions {
    /// The session a request belongs to (by its cookie); the default one without a cookie.
    pub fn of(&self, metadata: &MetadataMap) -> Session {
        let Some(id) = session_id(metadata) else {
            return Session::default();
        };
        let mut entries = self.entries.lock().expect("not poisoned");
        entries.get_mut(&id).map_or_else(Session::default, |e| {
            e.last_used = Instant::now();
            e.session.clone()
        })
    }

    /// Applies `request` to the caller's session, creating one when the request carries no
    /// cookie. Returns the result and, for a new session, the `set-cookie` value to send.
    pub fn set(
        &self,
        metadata: &MetadataMap,
        request: SetSessionOptionsRequest,
    ) -> (SetSessionOptionsResult, Option<String>) {
        let (id, new_cookie) = match session_id(metadata) {
            Some(id) => (id, None),
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                let cookie = format!("{COOKIE}={id}");
                (id, Some(cookie))
            }
        };
        let mut entries = self.entries.lock().expect("not poisoned");
        entries.retain(|_, e| e.last_used.elapsed() < IDLE_TIMEOUT);
        let entry = entries.entry(id).or_insert_with(|| Entry {
            session: Session::default(),
            last_used: Instant::now(),
        });
        entry.last_used = Instant::now();
        let mut errors = HashMap::new();
        for (name, value) in request.session_options {
            if let Err(code) = apply(&mut entry.session, &name, value.option_value) {
                errors.insert(name, SetSessionOptionError { value: code });
            }
        }
        (SetSessionOptionsResult { errors }, new_cookie)
    }

    pub fn get(&self, metadata: &MetadataMap) -> GetSessionOptionsResult {
        let session = self.of(metadata);
        let text = |s: &str| SessionOptionValue {
            option_value: Some(OptionValue::StringValue(s.to_string())),
        };
        let schema = session.schema.as_deref().unwrap_or(SHOAL_SCHEMA);
        GetSessionOptionsResult {
            session_options: HashMap::from([
                ("catalog".to_string(), text(SHOAL_CATALOG)),
                ("schema".to_string(), text(schema)),
                (
                    ENDPOINTS_OPTION.to_string(),
                    text(match session.endpoints {
                        ResultEndpoints::Coordinator => "coordinator",
                        ResultEndpoints::Executors => "executors",
                    }),
                ),
            ]),
        }
    }

    pub fn close(&self, metadata: &MetadataMap) -> Result<CloseSessionResult, Status> {
        let id = session_id(metadata).ok_or_else(|| Status::not_found("no session to close"))?;
        self.entries
            .lock()
            .expect("not poisoned")
            .remove(&id)
            .ok_or_else(|| Status::not_found("unknown or expired session"))?;
        Ok(CloseSessionResult { status: 1 })
    }
}

/// Sets one option; the error is the spec's code for the failure.
fn apply(session: &mut Session, name: &str, value: Option<OptionValue>) -> Result<(), i32> {
    let text = match value {
        None => None, // a valueless option resets it
        Some(OptionValue::StringValue(s)) => Some(s),
        Some(_) => return Err(INVALID_VALUE),
    };
    match name {
        "catalog" => match text.as_deref() {
            None | Some(SHOAL_CATALOG) => Ok(()),
            Some(_) => Err(INVALID_VALUE),
        },
        "schema" => match text {
            None => {
                session.schema = None;
                Ok(())
            }
            Some(s) if KNOWN_SCHEMAS.contains(&s.as_str()) => {
                session.schema = Some(s);
                Ok(())
            }
            Some(_) => Err(INVALID_VALUE),
        },
        ENDPOINTS_OPTION => {
            session.endpoints = match text {
                None => ResultEndpoints::default(),
                Some(s) => ResultEndpoints::parse(&s).ok_or(INVALID_VALUE)?,
            };
            Ok(())
        }
        _ => Err(INVALID_NAME),
    }
}

fn session_id(metadata: &MetadataMap) -> Option<String> {
    metadata
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(cookie: &str) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        metadata.insert("cookie", cookie.parse().unwrap());
        metadata
    }

    fn set(name: &str, value: &str) -> SetSessionOptionsRequest {
        SetSessionOptionsRequest {
            session_options: HashMap::from([(
                name.to_string(),
                SessionOptionValue {
                    option_value: Some(OptionValue::StringValue(value.to_string())),
                },
            )]),
        }
    }

    #[test]
    fn a_session_keeps_its_schema_behind_its_cookie() {
        let sessions = Sessions::default();
        let (result, cookie) =
            sessions.set(&MetadataMap::new(), set("schema", "information_schema"));
        assert!(result.errors.is_empty());
        let cookie = cookie.expect("a new session sets a cookie");
        let metadata = with_cookie(&format!("other=1; {cookie}"));
        assert_eq!(
            sessions.of(&metadata).schema.as_deref(),
            Some("information_schema")
        );
        assert_eq!(sessions.of(&MetadataMap::new()), Session::default());
        let options = sessions.get(&metadata).session_options;
        assert_eq!(
            options["schema"].option_value,
            Some(OptionValue::StringValue("information_schema".into()))
        );
        assert_eq!(sessions.close(&metadata).unwrap().status, 1);
        assert_eq!(
            sessions.close(&metadata).unwrap_err().code(),
            tonic::Code::NotFound
        );
    }

    #[test]
    fn unknown_names_and_values_are_reported_per_option() {
        let sessions = Sessions::default();
        let (result, _) = sessions.set(&MetadataMap::new(), set("catalog", "elsewhere"));
        assert_eq!(result.errors["catalog"].value, INVALID_VALUE);
        let (result, _) = sessions.set(&MetadataMap::new(), set("colour", "blue"));
        assert_eq!(result.errors["colour"].value, INVALID_NAME);
    }

    #[test]
    fn messages_match_flight_proto_wire_format() {
        // SetSessionOptionsRequest{ "a": { int64_value: 1 } }, encoded by hand from Flight.proto:
        // field 1 (map entry) { key = "a", value = { field 3 (sfixed64) = 1 } }.
        let bytes = [
            0x0a, 0x0e, 0x0a, 0x01, b'a', 0x12, 0x09, 0x19, 1, 0, 0, 0, 0, 0, 0, 0,
        ];
        let decoded = SetSessionOptionsRequest::decode(&bytes[..]).unwrap();
        assert_eq!(
            decoded.session_options["a"].option_value,
            Some(OptionValue::Int64Value(1))
        );
    }
}
