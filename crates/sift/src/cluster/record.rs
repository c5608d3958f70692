//! A write as the cluster's input log holds it (docs/cluster.md "Writes"):
//! the HTTP request itself (method, target, headers, body) plus what its
//! first application drew from outside it, the business instant and the
//! seed of the ids and keys it made, so that replaying it on another node
//! applies it identically. The fields travel as NATS message headers and
//! the body as the payload.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use bytes::Bytes;
use sift_cluster::HeaderMap;

const KIND: &str = "Sift-Kind";
const NOW: &str = "Sift-Now";
const SEED: &str = "Sift-Seed";
const METHOD: &str = "Sift-Method";
const TARGET: &str = "Sift-Target";
const SESSION_WORKSPACE: &str = "Sift-Session-Workspace";
const SESSION_KEY: &str = "Sift-Session-Key";
const NODE: &str = "Sift-Node";
/// The prefix of the request's own headers.
const HTTP: &str = "Sift-H-";

/// Request headers that describe the hop, not the request.
const HOP: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
    crate::cluster::FORWARDED,
];

/// What an input is.
#[derive(Debug)]
pub enum Input {
    /// An HTTP write, applied through the API.
    Request(Recorded),
    /// A node took the lead: nothing to apply. Appending it fences off
    /// the previous leader, whose next append expects an older sequence.
    Fence,
    /// A fresh cluster's first workspace, made by its first leader.
    FirstWorkspace { now_ms: i64, seed: u64 },
    /// Workflow triggers run while no write came (a write runs those
    /// waiting before it applies).
    Drain { now_ms: i64 },
    /// A web UI session started (a sign-in link followed): the same
    /// cookie keeps working on the next leader.
    Session {
        now_ms: i64,
        cookie: String,
        workspace: String,
        key_hash: Option<String>,
    },
}

#[derive(Debug)]
pub struct Recorded {
    pub now_ms: i64,
    pub seed: u64,
    pub method: Method,
    pub target: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    /// The session signing the request, when a cookie did: (workspace id,
    /// hash of the key it was made from).
    pub session: Option<(String, Option<String>)>,
}

impl Recorded {
    pub fn encode(&self) -> (HeaderMap, Bytes) {
        let mut headers = HeaderMap::new();
        headers.insert(KIND, "request");
        headers.insert(NOW, self.now_ms.to_string().as_str());
        headers.insert(SEED, self.seed.to_string().as_str());
        headers.insert(METHOD, self.method.as_str());
        headers.insert(TARGET, self.target.as_str());
        for (name, value) in &self.headers {
            if let Ok(text) = value.to_str() {
                headers.append(format!("{HTTP}{name}").as_str(), text);
            }
        }
        if let Some((workspace, key)) = &self.session {
            headers.insert(SESSION_WORKSPACE, workspace.as_str());
            if let Some(key) = key {
                headers.insert(SESSION_KEY, key.as_str());
            }
        }
        (headers, self.body.clone())
    }

    /// The request to hand the API again.
    pub fn request(&self) -> Request<Body> {
        let mut request = Request::new(Body::from(self.body.clone()));
        *request.method_mut() = self.method.clone();
        if let Ok(uri) = self.target.parse() {
            *request.uri_mut() = uri;
        }
        for (name, value) in &self.headers {
            request.headers_mut().append(name.clone(), value.clone());
        }
        request
    }
}

/// The request's own headers worth recording.
pub fn kept_headers(headers: &axum::http::HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    headers
        .iter()
        .filter(|(name, _)| !HOP.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

pub fn fence(node: &str, now_ms: i64) -> (HeaderMap, Bytes) {
    let mut headers = HeaderMap::new();
    headers.insert(KIND, "fence");
    headers.insert(NODE, node);
    headers.insert(NOW, now_ms.to_string().as_str());
    (headers, Bytes::new())
}

pub fn first_workspace(now_ms: i64, seed: u64) -> (HeaderMap, Bytes) {
    let mut headers = HeaderMap::new();
    headers.insert(KIND, "first-workspace");
    headers.insert(NOW, now_ms.to_string().as_str());
    headers.insert(SEED, seed.to_string().as_str());
    (headers, Bytes::new())
}

pub fn drain(now_ms: i64) -> (HeaderMap, Bytes) {
    let mut headers = HeaderMap::new();
    headers.insert(KIND, "drain");
    headers.insert(NOW, now_ms.to_string().as_str());
    (headers, Bytes::new())
}

pub fn session(
    cookie: &str,
    workspace: &str,
    key_hash: Option<&str>,
    now_ms: i64,
) -> (HeaderMap, Bytes) {
    let mut headers = HeaderMap::new();
    headers.insert(KIND, "session");
    headers.insert(NOW, now_ms.to_string().as_str());
    headers.insert(SESSION_WORKSPACE, workspace);
    if let Some(key) = key_hash {
        headers.insert(SESSION_KEY, key);
    }
    (headers, Bytes::from(cookie.to_string()))
}

fn text<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, String> {
    headers
        .get(name)
        .map(|v| v.as_str())
        .ok_or_else(|| format!("no {name} header"))
}

fn number<T: std::str::FromStr>(headers: &HeaderMap, name: &str) -> Result<T, String> {
    text(headers, name)?
        .parse()
        .map_err(|_| format!("{name} is not a number"))
}

/// The business instant an input was stamped with.
pub fn now_of(headers: &HeaderMap) -> Option<i64> {
    number(headers, NOW).ok()
}

pub fn decode(headers: &HeaderMap, payload: Bytes) -> Result<Input, String> {
    match text(headers, KIND)? {
        "fence" => Ok(Input::Fence),
        "drain" => Ok(Input::Drain {
            now_ms: number(headers, NOW)?,
        }),
        "session" => Ok(Input::Session {
            now_ms: number(headers, NOW)?,
            cookie: String::from_utf8(payload.to_vec())
                .map_err(|_| "a session cookie that is not text")?,
            workspace: text(headers, SESSION_WORKSPACE)?.to_string(),
            key_hash: headers.get(SESSION_KEY).map(|k| k.as_str().to_string()),
        }),
        "first-workspace" => Ok(Input::FirstWorkspace {
            now_ms: number(headers, NOW)?,
            seed: number(headers, SEED)?,
        }),
        "request" => {
            let method = Method::from_bytes(text(headers, METHOD)?.as_bytes())
                .map_err(|_| "a bad Sift-Method".to_string())?;
            let mut kept = Vec::new();
            for (name, values) in headers.iter() {
                let name: &str = name.as_ref();
                let Some(http_name) = name.strip_prefix(HTTP) else {
                    continue;
                };
                let Ok(http_name) = HeaderName::from_bytes(http_name.as_bytes()) else {
                    continue;
                };
                for value in values {
                    if let Ok(value) = HeaderValue::from_str(value.as_str()) {
                        kept.push((http_name.clone(), value));
                    }
                }
            }
            let session = headers.get(SESSION_WORKSPACE).map(|workspace| {
                (
                    workspace.as_str().to_string(),
                    headers.get(SESSION_KEY).map(|k| k.as_str().to_string()),
                )
            });
            Ok(Input::Request(Recorded {
                now_ms: number(headers, NOW)?,
                seed: number(headers, SEED)?,
                method,
                target: text(headers, TARGET)?.to_string(),
                headers: kept,
                body: payload,
                session,
            }))
        }
        other => Err(format!("an input of unknown kind {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_comes_back_as_it_was_recorded() {
        let recorded = Recorded {
            now_ms: 1_765_000_000_123,
            seed: 42,
            method: Method::PUT,
            target: "/v1/contacts/c%201?x=1".into(),
            headers: vec![
                (
                    HeaderName::from_static("authorization"),
                    HeaderValue::from_static("Bearer sk_1"),
                ),
                (
                    HeaderName::from_static("content-type"),
                    HeaderValue::from_static("application/json"),
                ),
            ],
            body: Bytes::from_static(b"{\"properties\":{}}"),
            session: Some(("ws_1".into(), None)),
        };
        let (headers, payload) = recorded.encode();
        let Ok(Input::Request(back)) = decode(&headers, payload) else {
            panic!("not decoded as a request");
        };
        assert_eq!(back.now_ms, recorded.now_ms);
        assert_eq!(back.seed, 42);
        assert_eq!(back.method, Method::PUT);
        assert_eq!(back.target, recorded.target);
        assert_eq!(back.body, recorded.body);
        assert_eq!(back.session, recorded.session);
        let request = back.request();
        assert_eq!(request.headers()["authorization"], "Bearer sk_1");
        assert_eq!(request.uri().path(), "/v1/contacts/c%201");
    }

    #[test]
    fn fences_and_unknown_kinds() {
        let (headers, payload) = fence("n1", 5);
        assert!(matches!(decode(&headers, payload), Ok(Input::Fence)));
        assert_eq!(now_of(&headers), Some(5));
        let mut odd = HeaderMap::new();
        odd.insert(KIND, "what");
        assert!(decode(&odd, Bytes::new()).is_err());
    }
}
