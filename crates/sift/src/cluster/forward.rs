//! Passing a request to the leading node and its answer back, streamed
//! (a change stream stays open through the node that received it).

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Request, Version};
use axum::response::Response;
use bytes::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub type HttpClient = Client<HttpConnector, Body>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Why a request did not get an answer from the leader.
pub enum Failed {
    /// It never reached the leader (no connection): it may be sent again.
    NotSent(String),
    /// It may have reached the leader: sending it again could apply it twice.
    Unknown(String),
}

/// Headers of one hop, not of the request or response.
const HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
    "host",
    "content-length",
];

pub async fn forward(
    client: &HttpClient,
    base_url: &str,
    node: &str,
    parts: &Parts,
    body: Bytes,
) -> Result<Response, Failed> {
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string());
    let uri = format!("{}{target}", base_url.trim_end_matches('/'))
        .parse::<axum::http::Uri>()
        .map_err(|e| Failed::NotSent(format!("the leader's address {base_url}: {e}")))?;
    let mut request = Request::new(Body::from(body));
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    for (name, value) in &parts.headers {
        if !HOP.contains(&name.as_str()) {
            request.headers_mut().append(name.clone(), value.clone());
        }
    }
    if let Ok(from) = HeaderValue::from_str(node) {
        request.headers_mut().insert(super::FORWARDED, from);
    }
    match client.request(request).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            for hop in HOP.iter().filter(|h| **h != "content-length") {
                parts.headers.remove(*hop);
            }
            Ok(Response::from_parts(parts, Body::new(body)))
        }
        Err(e) if e.is_connect() => Err(Failed::NotSent(e.to_string())),
        Err(e) => Err(Failed::Unknown(e.to_string())),
    }
}
