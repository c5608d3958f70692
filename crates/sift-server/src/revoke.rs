//! Ending what a revoked credential opened.
//!
//! Requests check their key or session when they arrive, but a change
//! stream (API or UI) lasts for hours: it would keep delivering after its
//! key was revoked. Every revocation (and every sign-out) is announced on
//! `AppState::revocations`, and each stream re-checks the credential it was
//! opened with and ends when it is no longer valid.

use std::future::Future;

use axum::http::{HeaderMap, header};
use futures_util::{Stream, StreamExt};
use sift_store::hash_key;

use crate::state::AppState;

/// What signed a request in: a workspace key (by its hash) or a UI session
/// cookie, with the precedence of the `Ws` extractor.
#[derive(Clone)]
pub enum Credential {
    Key(String),
    Session(String),
}

impl Credential {
    pub fn of(headers: &HeaderMap) -> Option<Credential> {
        match headers.get(header::AUTHORIZATION) {
            None => crate::session::cookie(headers).map(|c| Credential::Session(c.to_string())),
            Some(value) => {
                let key = value.to_str().ok()?.strip_prefix("Bearer ")?.trim();
                Some(Credential::Key(hash_key(key)))
            }
        }
    }
}

impl AppState {
    fn still_valid(&self, credential: &Credential) -> bool {
        match credential {
            Credential::Key(hash) => self.key_hash_valid(hash),
            Credential::Session(cookie) => self.workspace_for_session(cookie).is_some(),
        }
    }

    /// Resolves once `credential` is revoked (never, for `None`).
    pub fn revoked(
        &self,
        credential: Option<Credential>,
    ) -> impl Future<Output = ()> + Send + use<> {
        let state = self.clone();
        let mut announced = self.revocations.subscribe();
        async move {
            let Some(credential) = credential else {
                return std::future::pending().await;
            };
            loop {
                if !state.still_valid(&credential) {
                    return;
                }
                if announced.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        }
    }

    /// Announces that a key was revoked or a session ended.
    pub fn announce_revocation(&self) {
        self.revocations.send_modify(|n| *n += 1);
    }
}

/// `stream`, ended as soon as the credential in `headers` is revoked.
pub fn until_revoked<S: Stream>(
    state: &AppState,
    headers: &HeaderMap,
    stream: S,
) -> impl Stream<Item = S::Item> + use<S> {
    stream.take_until(state.revoked(Credential::of(headers)))
}
