//! An ad account's Custom Audiences on the Graph API: listed a page at a
//! time (`GET /act_{id}/customaudiences`, paged by `after` cursors) so a
//! marketer picks one, or created (`POST /act_{id}/customaudiences`, a
//! customer-list audience) without leaving Sift.
//!
//! These calls answer a person waiting on a page, so unlike a job's batches
//! they are not retried: each is one request with a short timeout, and a
//! refusal comes back at once in words the person can act on. The token
//! goes in the `Authorization` header, never in a URL.

use std::time::Duration;

use serde_json::{Value as Json, json};

use super::Settings;
use super::graph::{AUTH_CODES, RATE_LIMIT_CODES, Secret, TRANSIENT_CODES};
use crate::destination::Destinations;

/// The longest a lookup waits for Facebook (the job setting may be longer).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest answer read from Facebook: a page of 100 audiences is far less.
const MAX_ANSWER_BYTES: usize = 2 * 1024 * 1024;
/// Audiences asked of Facebook per page: its own page size is at most this.
pub const MAX_PAGE: usize = 100;
/// What is read of each audience.
const FIELDS: &str =
    "id,name,description,approximate_count_lower_bound,approximate_count_upper_bound";

/// Where an ad account's audiences are, and the token to read them.
pub struct Account<'a> {
    pub graph_url: &'a str,
    pub version: &'a str,
    /// Digits only.
    pub ad_account_id: &'a str,
    pub token: &'a Secret,
}

impl Account<'_> {
    fn url(&self) -> String {
        format!(
            "{}/{}/act_{}/customaudiences",
            self.graph_url.trim_end_matches('/'),
            self.version,
            self.ad_account_id
        )
    }
}

/// One Custom Audience as Facebook lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audience {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// Facebook's estimate of the matched people (absent, or -1, while it
    /// has none: a new or small audience).
    pub lower_bound: Option<u64>,
    pub upper_bound: Option<u64>,
}

/// Why Facebook did not give what was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookupError {
    /// Facebook answered and said no (the token, the account, a value):
    /// asking again the same way will not help.
    Refused(String),
    /// Facebook could not be reached, timed out, failed or throttled:
    /// trying again later may work.
    Unavailable(String),
}

/// A client for lookups: no redirects, the destination policy's resolver,
/// a short timeout.
pub fn client(settings: &Settings, destinations: &Destinations) -> Option<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    destinations
        .client()
        .timeout(LOOKUP_TIMEOUT.min(Duration::from_millis(settings.timeout_ms.max(1))))
        .user_agent(concat!("Sift/", env!("CARGO_PKG_VERSION")))
        .build()
        .ok()
}

/// One page of the account's audiences, and the cursor of the next when
/// there is one.
pub async fn list(
    client: &reqwest::Client,
    destinations: &Destinations,
    account: &Account<'_>,
    limit: usize,
    after: Option<&str>,
) -> Result<(Vec<Audience>, Option<String>), LookupError> {
    let mut url = reqwest::Url::parse(&account.url()).map_err(|_| bad_url())?;
    url.query_pairs_mut()
        .append_pair("fields", FIELDS)
        .append_pair("limit", &limit.clamp(1, MAX_PAGE).to_string());
    if let Some(after) = after {
        url.query_pairs_mut().append_pair("after", after);
    }
    let answer = call(destinations, account, client.get(url)).await?;
    let items = answer["data"]
        .as_array()
        .ok_or_else(unreadable)?
        .iter()
        .filter_map(audience)
        .collect();
    // Facebook gives `paging.next` only when there is a next page; the
    // `after` cursor alone is there on the last page too.
    let next = answer["paging"]["next"]
        .as_str()
        .and(answer["paging"]["cursors"]["after"].as_str())
        .map(str::to_string);
    Ok((items, next))
}

/// Creates a customer-list audience in the account; answers its id.
pub async fn create(
    client: &reqwest::Client,
    destinations: &Destinations,
    account: &Account<'_>,
    name: &str,
    description: Option<&str>,
) -> Result<String, LookupError> {
    let mut body = json!({
        "name": name,
        "subtype": "CUSTOM",
        "customer_file_source": "USER_PROVIDED_ONLY",
    });
    if let Some(description) = description {
        body["description"] = json!(description);
    }
    let request = client
        .post(account.url())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string());
    let answer = call(destinations, account, request).await?;
    match &answer["id"] {
        Json::String(id) if !id.is_empty() => Ok(id.clone()),
        Json::Number(id) => Ok(id.to_string()),
        _ => Err(unreadable()),
    }
}

fn audience(item: &Json) -> Option<Audience> {
    let id = match &item["id"] {
        Json::String(id) => id.clone(),
        Json::Number(id) => id.to_string(),
        _ => return None,
    };
    // Facebook answers -1 while it has no estimate.
    let bound = |key: &str| item[key].as_i64().and_then(|n| u64::try_from(n).ok());
    Some(Audience {
        id,
        name: item["name"].as_str().unwrap_or_default().to_string(),
        description: item["description"]
            .as_str()
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        lower_bound: bound("approximate_count_lower_bound"),
        upper_bound: bound("approximate_count_upper_bound"),
    })
}

fn unreadable() -> LookupError {
    LookupError::Unavailable(
        "Facebook's answer could not be read: check the Graph URL, or try again later".to_string(),
    )
}

fn bad_url() -> LookupError {
    LookupError::Refused("the Graph URL is not a valid address".to_string())
}

async fn call(
    destinations: &Destinations,
    account: &Account<'_>,
    request: reqwest::RequestBuilder,
) -> Result<Json, LookupError> {
    // As for a job's batches: the token never goes to a refused
    // destination, and a literal address never reaches the resolver.
    if let Err(why) = reqwest::Url::parse(&account.url())
        .map_err(|e| e.to_string())
        .and_then(|url| destinations.check(&url))
    {
        return Err(LookupError::Refused(format!(
            "the Graph URL is not allowed: {why}"
        )));
    }
    let started = std::time::Instant::now();
    let response = request
        .header(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {}", account.token.expose()),
        )
        .send()
        .await;
    metrics::histogram!("sift_facebook_request_seconds").record(started.elapsed().as_secs_f64());
    let mut response = match response {
        Ok(response) => response,
        Err(error) => {
            if let Some(refused) = crate::destination::refusal(&error) {
                return Err(LookupError::Refused(refused));
            }
            // Never the error's Display: the message stays in words.
            return Err(LookupError::Unavailable(if error.is_timeout() {
                format!(
                    "Facebook did not answer within {} seconds: try again in a few minutes",
                    LOOKUP_TIMEOUT.as_secs()
                )
            } else {
                format!(
                    "could not reach Facebook at {}: check the Graph URL, or try again later",
                    account.graph_url
                )
            }));
        }
    };
    let status = response.status().as_u16();
    if response.status().is_redirection() {
        return Err(LookupError::Refused(
            "Facebook answered with a redirect, which is not followed so the token goes nowhere else: check the Graph URL".to_string(),
        ));
    }
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) if bytes.len() + chunk.len() <= MAX_ANSWER_BYTES => {
                bytes.extend_from_slice(&chunk);
            }
            Ok(Some(_)) => return Err(unreadable()),
            Ok(None) => break,
            Err(_) => {
                return Err(LookupError::Unavailable(
                    "Facebook's answer was cut off: try again in a few minutes".to_string(),
                ));
            }
        }
    }
    let answer: Json = serde_json::from_slice(&bytes).unwrap_or(Json::Null);
    if (200..300).contains(&status) && answer.get("error").is_none() && answer.is_object() {
        return Ok(answer);
    }
    Err(classify(status, &answer, account.ad_account_id))
}

/// What Facebook's refusal means for the person who asked.
fn classify(status: u16, answer: &Json, account: &str) -> LookupError {
    let error = &answer["error"];
    let code = error["code"].as_i64();
    let said = match (code, error["message"].as_str().filter(|m| !m.is_empty())) {
        (Some(code), Some(message)) => format!("code {code}: {message}"),
        (Some(code), None) => format!("code {code}"),
        (None, Some(message)) => format!("HTTP {status}: {message}"),
        (None, None) => format!("HTTP {status}"),
    };
    if status == 429 || code.is_some_and(|c| RATE_LIMIT_CODES.contains(&c)) {
        return LookupError::Unavailable(format!(
            "Facebook is limiting requests right now ({said}): try again in a few minutes"
        ));
    }
    if status >= 500
        || error["is_transient"].as_bool() == Some(true)
        || code.is_some_and(|c| TRANSIENT_CODES.contains(&c))
    {
        return LookupError::Unavailable(format!(
            "Facebook could not answer ({said}): try again in a few minutes"
        ));
    }
    if status == 401
        || status == 403
        || code.is_some_and(|c| AUTH_CODES.contains(&c) || (200..300).contains(&c))
        || error["type"].as_str() == Some("OAuthException")
    {
        return LookupError::Refused(format!(
            "Facebook refused the access token ({said}): save a token with ads_management \
             permission for ad account {account}"
        ));
    }
    if !(400..500).contains(&status) {
        return unreadable();
    }
    LookupError::Refused(format!("Facebook refused the request ({said})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_apart() {
        let token = json!({"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}});
        assert!(
            matches!(classify(400, &token, "123"), LookupError::Refused(m) if m.contains("refused the access token (code 190: Invalid OAuth access token.)") && m.contains("ad account 123"))
        );
        let limit = json!({"error": {"message": "(#17) User request limit reached", "type": "OAuthException", "code": 17}});
        assert!(matches!(
            classify(400, &limit, "1"),
            LookupError::Unavailable(_)
        ));
        assert!(matches!(
            classify(503, &Json::Null, "1"),
            LookupError::Unavailable(_)
        ));
        let bad = json!({"error": {"message": "Invalid parameter", "type": "GraphMethodException", "code": 100}});
        assert_eq!(
            classify(400, &bad, "1"),
            LookupError::Refused(
                "Facebook refused the request (code 100: Invalid parameter)".into()
            )
        );
    }

    #[test]
    fn audiences_without_an_estimate_have_no_bounds() {
        let fresh = json!({"id": "238", "name": "New", "approximate_count_lower_bound": -1, "approximate_count_upper_bound": -1});
        let read = audience(&fresh).unwrap();
        assert_eq!((read.lower_bound, read.upper_bound), (None, None));
        let sized = json!({"id": 239, "name": "Old", "description": "", "approximate_count_lower_bound": 1000, "approximate_count_upper_bound": 1200});
        let read = audience(&sized).unwrap();
        assert_eq!(
            (
                read.id.as_str(),
                read.description,
                read.lower_bound,
                read.upper_bound
            ),
            ("239", None, Some(1000), Some(1200))
        );
        assert_eq!(audience(&json!({"name": "no id"})), None);
    }
}
