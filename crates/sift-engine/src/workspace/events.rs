//! Events (SPEC §1) and time: ingesting events into the per-contact history
//! and the behavioural aggregates, and firing the timer queue.

use sift_lang::DateTime;

use super::*;
use crate::error::Error;
use crate::value::RawValue;

/// Events may be stamped at most this far ahead of the server's clock.
pub const MAX_FUTURE_MS: i64 = 5 * 60_000;

/// An event as a client sent it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventInput {
    /// Idempotency key: an event whose id was already accepted is
    /// acknowledged and not applied again.
    pub id: Option<String>,
    pub contact_id: String,
    pub event_type: String,
    /// Defaults to now.
    pub at: Option<DateTime>,
    /// What conditions can read: scalars and lists of strings. A value the
    /// engine cannot read (an object, a list of numbers) is given as
    /// `RawValue::Unsupported` and ignored.
    pub properties: Vec<(String, RawValue)>,
    /// The properties exactly as sent (a JSON object's text; `{}` when none).
    pub properties_json: String,
    /// For a contact the event creates: whether it is anonymous.
    pub anonymous: Option<bool>,
}

impl Workspace {
    /// Accepts events, all or nothing: every item is checked before any is
    /// applied. A replayed id is counted in `Write::duplicates` and skipped.
    pub fn ingest_events(&mut self, items: &[EventInput], now: DateTime) -> Result<Write, Error> {
        let _ = (items, now);
        todo!("issue 3")
    }

    /// Checks events without applying any: the index of each item
    /// [`Workspace::ingest_events`] would refuse, and why.
    pub fn check_events(&self, items: &[EventInput], now: DateTime) -> Vec<(usize, Error)> {
        let _ = (items, now);
        todo!("issue 3")
    }

    /// Fires every timer due at or before `now`, in instant order; each
    /// flip is recorded at the instant it became due, with cause `time`.
    pub fn advance(&mut self, now: DateTime) -> Write {
        let _ = now;
        todo!("issue 3")
    }

    /// The instant of the earliest pending timer.
    pub fn next_timer(&self) -> Option<DateTime> {
        todo!("issue 3")
    }

    /// The instant up to which time has been processed.
    pub fn clock(&self) -> DateTime {
        todo!("issue 3")
    }
}
