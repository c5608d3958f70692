//! Talking to the Graph API: one batch of rows added (`POST`) or removed
//! (`DELETE`) on `{graph_url}/{version}/{audience_id}/users`, retried with
//! backoff on 5xx and rate limits, stopped at once on auth errors.

use std::time::Duration;

use serde_json::{Value as Json, json};

/// An access token. Its `Debug` is redacted so that no log line or panic
/// message can carry it; it is kept in memory only, by the job's task.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(token: String) -> Secret {
        Secret(token)
    }

    /// The token itself, to seal it for storage.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Add,
    Remove,
}

impl Method {
    pub fn http(self) -> &'static str {
        match self {
            Method::Add => "POST",
            Method::Remove => "DELETE",
        }
    }
}

/// Where a job's batches go, and how hard it tries.
#[derive(Clone, Debug)]
pub struct Target {
    /// `{graph_url}/{version}/{audience_id}/users`; holds no secret.
    pub url: String,
    pub token: Secret,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub max_attempts: u32,
    pub destinations: crate::destination::Destinations,
}

/// Facebook's answer to a batch that was accepted.
#[derive(Clone, Debug, Default)]
pub struct Accepted {
    pub status: u16,
    pub num_received: Option<u64>,
    pub num_invalid_entries: Option<u64>,
    pub session_id: Option<String>,
    pub attempts: u32,
}

/// Why a batch was not accepted; the job fails with the message.
#[derive(Clone, Debug)]
pub struct Refused {
    pub status: Option<u16>,
    pub message: String,
    pub attempts: u32,
}

/// What one failed attempt means.
enum Verdict {
    Retry(String),
    Stop(String),
}

/// Facebook's throttling codes (Marketing API "Rate limiting"): application,
/// user, page and ad-account limits, and the custom-audience business use
/// case limit.
pub(super) const RATE_LIMIT_CODES: [i64; 6] = [4, 17, 32, 613, 80003, 80004];
/// "An unknown error occurred" and "Service temporarily unavailable".
pub(super) const TRANSIENT_CODES: [i64; 2] = [1, 2];
/// Facebook's codes for an invalid, expired or under-permissioned token.
pub(super) const AUTH_CODES: [i64; 4] = [190, 102, 10, 200];

/// `{"payload": {"schema": [...], "data": [[...]]}, "access_token": "..."}`
/// as the Marketing API's `/{audience_id}/users` edge takes it.
pub fn body(schema: &[&str], rows: &[&[String]], token: &Secret) -> Vec<u8> {
    let body = json!({
        "payload": {"schema": schema, "data": rows},
        "access_token": token.0,
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Sends one batch until it is accepted, refused for good, or out of
/// attempts. `on_retry` hears about each failed attempt that will be retried.
pub async fn send(
    client: &reqwest::Client,
    target: &Target,
    method: Method,
    body: Vec<u8>,
    mut on_retry: impl FnMut(u32, &str),
) -> Result<Accepted, Refused> {
    let http_method = match method {
        Method::Add => reqwest::Method::POST,
        Method::Remove => reqwest::Method::DELETE,
    };
    // Checked before every batch: the token must never go to a refused
    // destination, and a literal address never reaches the resolver.
    if let Err(why) = reqwest::Url::parse(&target.url)
        .map_err(|e| e.to_string())
        .and_then(|url| target.destinations.check(&url))
    {
        return Err(Refused {
            status: None,
            message: format!("destination refused: the Graph API address {why}"),
            attempts: 0,
        });
    }
    let body = axum::body::Bytes::from(body);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let started = std::time::Instant::now();
        let response = client
            .request(http_method.clone(), &target.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        metrics::histogram!("sift_facebook_request_seconds")
            .record(started.elapsed().as_secs_f64());
        let (status, verdict) = match response {
            // Never the error's Display with its URL: none holds the token,
            // but the error text stays generic all the same.
            Err(error) if crate::destination::refusal(&error).is_some() => (
                None,
                Verdict::Stop(crate::destination::refusal(&error).unwrap_or_default()),
            ),
            Err(error) => (
                None,
                Verdict::Retry(if error.is_timeout() {
                    "Facebook did not answer in time".to_string()
                } else {
                    "could not reach the Graph API (connection failed)".to_string()
                }),
            ),
            Ok(response) if response.status().is_redirection() => (
                Some(response.status().as_u16()),
                Verdict::Stop(format!(
                    "the Graph API answered {}, a redirect: redirects are not followed, so the token goes nowhere else; check the Graph URL",
                    response.status()
                )),
            ),
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                let answer: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
                if (200..300).contains(&status) && answer.get("error").is_none() {
                    return Ok(Accepted {
                        status,
                        num_received: answer.get("num_received").and_then(Json::as_u64),
                        num_invalid_entries: answer
                            .get("num_invalid_entries")
                            .and_then(Json::as_u64),
                        session_id: answer.get("session_id").map(|s| match s {
                            Json::String(s) => s.clone(),
                            other => other.to_string(),
                        }),
                        attempts: attempt,
                    });
                }
                (Some(status), classify(status, &answer))
            }
        };
        metrics::counter!("sift_facebook_attempts_total", "outcome" => "failed").increment(1);
        match verdict {
            Verdict::Stop(message) => {
                return Err(Refused {
                    status,
                    message,
                    attempts: attempt,
                });
            }
            Verdict::Retry(message) if attempt >= target.max_attempts => {
                return Err(Refused {
                    status,
                    message: format!("{message}; gave up after {attempt} attempts"),
                    attempts: attempt,
                });
            }
            Verdict::Retry(message) => {
                on_retry(attempt, &message);
                tokio::time::sleep(backoff(target, attempt)).await;
            }
        }
    }
}

/// `base * 2^(n-1)`, capped, of which a random half ("equal jitter"), so
/// many jobs throttled together do not come back together.
fn backoff(target: &Target, failures: u32) -> Duration {
    let base = target.retry_base.as_millis() as u64;
    let full = base
        .saturating_mul(1u64 << failures.saturating_sub(1).min(20))
        .min(target.retry_max.as_millis() as u64);
    Duration::from_millis(full / 2 + rand::random_range(0..=full / 2))
}

fn classify(status: u16, answer: &Json) -> Verdict {
    let error = answer.get("error");
    let code = error.and_then(|e| e.get("code")).and_then(Json::as_i64);
    let kind = error
        .and_then(|e| e.get("type"))
        .and_then(Json::as_str)
        .unwrap_or_default();
    let fb_message = error
        .and_then(|e| e.get("message"))
        .and_then(Json::as_str)
        .unwrap_or_default();
    let transient = error
        .and_then(|e| e.get("is_transient"))
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let said = |what: &str| match code {
        Some(code) => format!("{what} (HTTP {status}, code {code}: {fb_message})"),
        None if fb_message.is_empty() => format!("{what} (HTTP {status})"),
        None => format!("{what} (HTTP {status}: {fb_message})"),
    };
    // Throttling answers carry type OAuthException too, so they are told
    // apart by their code first.
    if status == 429 || code.is_some_and(|c| RATE_LIMIT_CODES.contains(&c)) {
        return Verdict::Retry(said("Facebook is rate limiting"));
    }
    if status >= 500 || transient || code.is_some_and(|c| TRANSIENT_CODES.contains(&c)) {
        return Verdict::Retry(said("the Graph API failed"));
    }
    if status == 401
        || status == 403
        || code.is_some_and(|c| AUTH_CODES.contains(&c) || (200..300).contains(&c))
        || kind == "OAuthException"
    {
        let code_text = code.map_or_else(|| format!("HTTP {status}"), |c| format!("code {c}"));
        return Verdict::Stop(format!(
            "Facebook refused the access token ({code_text}: {fb_message}): create a token with \
             ads_management permission for this ad account and start the export again"
        ));
    }
    Verdict::Stop(said("Facebook rejected the batch"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_do_not_print() {
        let secret = Secret::new("EAAB-very-secret".into());
        assert!(!format!("{secret:?}").contains("very-secret"));
    }

    #[test]
    fn answers_are_classified() {
        let auth = json!({"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}});
        assert!(matches!(classify(400, &auth), Verdict::Stop(m) if m.contains("code 190")));
        let limit = json!({"error": {"message": "(#17) User request limit reached", "type": "OAuthException", "code": 17}});
        assert!(matches!(classify(400, &limit), Verdict::Retry(_)));
        assert!(matches!(classify(503, &Json::Null), Verdict::Retry(_)));
        assert!(matches!(classify(429, &Json::Null), Verdict::Retry(_)));
        let bad = json!({"error": {"message": "Invalid parameter", "type": "GraphMethodException", "code": 100}});
        assert!(matches!(classify(400, &bad), Verdict::Stop(m) if m.contains("Invalid parameter")));
    }
}
