//! Request bodies: a deadline to arrive, and no half-read body left on a
//! keep-alive connection.
//!
//! A client dribbling a body one byte at a time would otherwise hold its
//! connection (and the handler waiting on it) for ever: the whole body must
//! arrive within the body-read timeout, or the request is answered 408 and
//! the connection closed.
//!
//! A handler that answers before reading the body (a 401, a 404) leaves the
//! body's bytes in the connection, where they would be parsed as the next
//! request; hyper then closes the connection, and a client that pooled it
//! sees its next request fail. So small bodies are read before the handler
//! runs, and when a larger one is left unread the response says
//! `Connection: close`.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::time::{Instant, Sleep};

use crate::error::{ApiError, Code};
use crate::state::AppState;

/// Bodies up to this size are read before the handler runs.
pub const DRAIN_MAX: u64 = 64 * 1024;

fn timed_out(limit: std::time::Duration) -> Response {
    close(
        ApiError::new(
            Code::RequestTimeout,
            format!(
                "the request body did not arrive within {} ms; send it at once after the headers",
                limit.as_millis()
            ),
        )
        .into_response(),
    )
}

fn close(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = state.config.body_read_timeout;
    let (parts, body) = request.into_parts();
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let deadline = Instant::now() + limit;
    if body.size_hint().upper().is_some_and(|n| n <= DRAIN_MAX) {
        return match tokio::time::timeout_at(deadline, body.collect()).await {
            Ok(Ok(collected)) => {
                let body = Body::from(collected.to_bytes());
                next.run(Request::from_parts(parts, body)).await
            }
            Ok(Err(error)) => close(
                ApiError::new(
                    Code::BadRequest,
                    format!("the request body could not be read: {error}"),
                )
                .into_response(),
            ),
            Err(_) => timed_out(limit),
        };
    }
    let flags = Arc::new(Flags::default());
    let body = Body::new(Deadline {
        body,
        sleep: Box::pin(tokio::time::sleep_until(deadline)),
        flags: flags.clone(),
    });
    let response = next.run(Request::from_parts(parts, body)).await;
    if flags.timed_out.load(Ordering::Acquire) {
        timed_out(limit)
    } else if flags.done.load(Ordering::Acquire) {
        response
    } else {
        close(response)
    }
}

#[derive(Default)]
struct Flags {
    done: AtomicBool,
    timed_out: AtomicBool,
}

/// A body that fails once its deadline passes.
struct Deadline {
    body: Body,
    sleep: Pin<Box<Sleep>>,
    flags: Arc<Flags>,
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(None) => {
                self.flags.done.store(true, Ordering::Release);
                Poll::Ready(None)
            }
            Poll::Ready(frame) => {
                if self.body.is_end_stream() {
                    self.flags.done.store(true, Ordering::Release);
                }
                Poll::Ready(frame)
            }
            Poll::Pending => {
                if self.sleep.as_mut().poll(cx).is_ready() {
                    self.flags.timed_out.store(true, Ordering::Release);
                    return Poll::Ready(Some(Err(axum::Error::new(
                        "the request body did not arrive in time",
                    ))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
