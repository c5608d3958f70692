//! Lead scoring rules (SPEC §1): each matching event adds `points` to the
//! contact's `lead_score`; with `expires_after`, the points are taken away
//! again once that long has passed since the event's `at`.

use sift_lang::{Condition, DateTime, Duration};

#[derive(Clone, Debug, PartialEq)]
pub struct ScoringRule {
    pub id: String,
    pub event_type: String,
    /// A condition over the event's properties.
    pub filter: Option<Condition>,
    pub points: f64,
    pub expires_after: Option<Duration>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

/// A rule to create; the id is chosen by the caller.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoringRuleInput {
    pub id: String,
    pub event_type: String,
    pub filter: Option<Condition>,
    pub points: f64,
    pub expires_after: Option<Duration>,
}

/// An edit; `None` leaves a part unchanged, `Some(None)` removes an optional one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScoringRulePatch {
    pub event_type: Option<String>,
    pub filter: Option<Option<Condition>>,
    pub points: Option<f64>,
    pub expires_after: Option<Option<Duration>>,
}
