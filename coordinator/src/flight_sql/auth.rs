//! Flight SQL authentication with one shared password (until users and roles exist): Handshake
//! checks HTTP Basic credentials, with or without base64 padding (Go clients leave it out), and
//! answers with a bearer token that later calls carry; a call may also carry Basic credentials
//! itself. A coordinator without a password accepts every client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use tonic::Status;
use tonic::metadata::MetadataMap;

/// A token nobody used for this long must be earned again.
const TOKEN_IDLE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone, Default)]
pub struct FlightAuth {
    password: Option<Arc<str>>,
    tokens: Arc<Mutex<HashMap<String, Instant>>>,
}

enum Credentials {
    Basic { password: String },
    Bearer(String),
}

impl FlightAuth {
    /// Every client is accepted.
    pub fn open() -> Self {
        Self::default()
    }

    /// Clients must know `password` (any user name).
    pub fn with_password(password: impl Into<String>) -> Self {
        Self {
            password: Some(password.into().into()),
            tokens: Default::default(),
        }
    }

    /// Checks a Handshake's credentials; returns the bearer token to answer with, or `None`
    /// when no password is set.
    pub fn handshake(&self, metadata: &MetadataMap) -> Result<Option<String>, Status> {
        let Some(expected) = &self.password else {
            return Ok(None);
        };
        match credentials(metadata)? {
            Some(Credentials::Basic { password }) if same_secret(&password, expected) => {
                let token = uuid::Uuid::new_v4().simple().to_string();
                let mut tokens = self.tokens.lock().expect("not poisoned");
                tokens.retain(|_, used| used.elapsed() < TOKEN_IDLE_TIMEOUT);
                tokens.insert(token.clone(), Instant::now());
                Ok(Some(token))
            }
            Some(Credentials::Bearer(token)) if self.known(&token) => Ok(Some(token)),
            Some(_) => Err(wrong_credentials()),
            None => Err(missing_credentials()),
        }
    }

    /// Checks a call other than Handshake: a token from Handshake, or Basic credentials.
    pub fn check(&self, metadata: &MetadataMap) -> Result<(), Status> {
        let Some(expected) = &self.password else {
            return Ok(());
        };
        match credentials(metadata)? {
            Some(Credentials::Basic { password }) if same_secret(&password, expected) => Ok(()),
            Some(Credentials::Basic { .. }) => Err(wrong_credentials()),
            Some(Credentials::Bearer(token)) if self.known(&token) => Ok(()),
            Some(Credentials::Bearer(_)) => Err(Status::unauthenticated(
                "unknown or expired bearer token; authenticate again",
            )),
            None => Err(missing_credentials()),
        }
    }

    fn known(&self, token: &str) -> bool {
        let mut tokens = self.tokens.lock().expect("not poisoned");
        match tokens.get_mut(token) {
            Some(used) if used.elapsed() < TOKEN_IDLE_TIMEOUT => {
                *used = Instant::now();
                true
            }
            _ => false,
        }
    }
}

/// Compares in time that depends only on the lengths, so that timing does not reveal how much
/// of a guess was right.
fn same_secret(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

fn missing_credentials() -> Status {
    Status::unauthenticated(
        "this coordinator requires a password: authenticate with a user name and password (HTTP Basic on Handshake)",
    )
}

fn wrong_credentials() -> Status {
    Status::unauthenticated("invalid user name or password")
}

/// The `authorization` header's credentials, if the call has one.
fn credentials(metadata: &MetadataMap) -> Result<Option<Credentials>, Status> {
    let Some(value) = metadata.get("authorization") else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| Status::unauthenticated("the authorization header is not text"))?
        .trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Some(Credentials::Bearer(rest.to_string())));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Status::unauthenticated(format!(
            "unsupported authorization scheme '{scheme}'; use Basic or Bearer"
        )));
    }
    let decoded = STANDARD
        .decode(rest)
        .or_else(|_| STANDARD_NO_PAD.decode(rest.trim_end_matches('=')))
        .map_err(|_| Status::unauthenticated("malformed Basic credentials"))?;
    let text = String::from_utf8(decoded)
        .map_err(|_| Status::unauthenticated("malformed Basic credentials"))?;
    let (_user, password) = text
        .split_once(':')
        .ok_or_else(|| Status::unauthenticated("malformed Basic credentials"))?;
    Ok(Some(Credentials::Basic {
        password: password.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_header(value: &str) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        metadata.insert("authorization", value.parse().unwrap());
        metadata
    }

    #[test]
    fn basic_credentials_with_and_without_padding_earn_a_token() {
        let auth = FlightAuth::with_password("s3cret");
        // "ada:s3cret" is 10 bytes: base64 pads it with two '='; Go clients send it without.
        let padded = format!("Basic {}", STANDARD.encode("ada:s3cret"));
        let unpadded = format!("Basic {}", STANDARD_NO_PAD.encode("ada:s3cret"));
        assert!(padded.ends_with("==") && !unpadded.ends_with('='));
        for header in [padded, unpadded] {
            let token = auth.handshake(&with_header(&header)).unwrap().unwrap();
            auth.check(&with_header(&format!("Bearer {token}")))
                .unwrap();
            auth.check(&with_header(&header)).unwrap();
        }
    }

    #[test]
    fn wrong_missing_or_unknown_credentials_are_unauthenticated() {
        let auth = FlightAuth::with_password("s3cret");
        let wrong = format!("Basic {}", STANDARD.encode("ada:guess"));
        for error in [
            auth.handshake(&with_header(&wrong)).unwrap_err(),
            auth.handshake(&MetadataMap::new()).unwrap_err(),
            auth.check(&with_header("Bearer made-up")).unwrap_err(),
            auth.check(&with_header("Basic !!!")).unwrap_err(),
            auth.check(&MetadataMap::new()).unwrap_err(),
        ] {
            assert_eq!(error.code(), tonic::Code::Unauthenticated, "{error}");
        }
        assert!(
            auth.handshake(&with_header(&wrong))
                .unwrap_err()
                .message()
                .contains("invalid user name or password")
        );
    }

    #[test]
    fn without_a_password_everyone_is_accepted() {
        let auth = FlightAuth::open();
        assert_eq!(auth.handshake(&MetadataMap::new()).unwrap(), None);
        auth.check(&with_header("Bearer anything")).unwrap();
    }
}
