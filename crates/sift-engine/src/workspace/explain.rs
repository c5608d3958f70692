//! Explaining a segment for one contact: per node, whether it holds, the
//! value it tested (a field's value, an event count or sum) and the next
//! instant its answer changes by the passing of time alone.

use sift_lang::{Condition, DateTime};

use super::*;
use crate::aggregates::AggKey;
use crate::eval::{ValueRef, tally, test_case};
use crate::fields::LEAD_SCORE;
use crate::time::NEVER;
use crate::workspace::time::flip_instant;

/// Instants examined when looking for a node's next change; a contact with
/// more pending window exits than this gets no `next_change` for the node.
const MAX_CANDIDATES: usize = 4_096;

impl Workspace {
    /// Per-node truth of segment `id`'s condition for contact `no`.
    pub fn explain(&self, no: u32, id: &str, now: DateTime) -> Result<ExplainNode, Error> {
        let segment = self.segment_or_not_found(id)?;
        let now = now.max(self.clock);
        Ok(match &segment.def.condition {
            Some(cond) => self.explain_node(cond, no, now),
            None => ExplainNode {
                condition: Condition::InSegment(id.to_string()),
                result: segment.members.contains(no),
                value: None,
                next_change: None,
                children: Vec::new(),
            },
        })
    }

    fn explain_node(&self, cond: &Condition, no: u32, now: DateTime) -> ExplainNode {
        let children: Vec<ExplainNode> = match cond {
            Condition::All(children) | Condition::Any(children) => children
                .iter()
                .map(|c| self.explain_node(c, no, now))
                .collect(),
            Condition::Not(inner) => vec![self.explain_node(inner, no, now)],
            _ => Vec::new(),
        };
        let ctx = self.ctx(now);
        let value = match cond {
            Condition::Field { field, .. } => self
                .fields
                .index(field)
                .and_then(|i| self.contacts.get(no, i)),
            Condition::Event { .. } => {
                AggKey::of(cond).map(|k| Value::Number(f64::from(tally(&k, no, &ctx).0)))
            }
            Condition::EventSum { .. } => {
                AggKey::of(cond).map(|k| Value::Number(tally(&k, no, &ctx).1))
            }
            _ => None,
        };
        let result = self.holds_at(cond, no, now);
        let mut candidates = Vec::new();
        self.candidates(cond, no, now, &mut candidates);
        candidates.sort_unstable();
        candidates.dedup();
        let next_change = if candidates.len() > MAX_CANDIDATES {
            None
        } else {
            candidates
                .into_iter()
                .find(|t| self.holds_at(cond, no, *t) != result)
        };
        ExplainNode {
            condition: cond.clone(),
            result,
            value,
            next_change,
            children,
        }
    }

    /// Whether `cond` holds for contact `no` at `t`, from its values and
    /// history as they are now (referenced segments: their present members).
    fn holds_at(&self, cond: &Condition, no: u32, t: DateTime) -> bool {
        match cond {
            Condition::All(children) => children.iter().all(|c| self.holds_at(c, no, t)),
            Condition::Any(children) => children.iter().any(|c| self.holds_at(c, no, t)),
            Condition::Not(inner) => !self.holds_at(inner, no, t),
            Condition::Field {
                field,
                test,
                ignore_case,
            } => {
                let Some(index) = self.fields.index(field) else {
                    return test_case(None, test, *ignore_case, t);
                };
                if index == LEAD_SCORE && self.rules.any_expiring() {
                    let (score, _) = self.rule_score(no, t);
                    return test_case(Some(ValueRef::Num(score)), test, *ignore_case, t);
                }
                test_case(
                    self.contacts.column(index).get_ref(no),
                    test,
                    *ignore_case,
                    t,
                )
            }
            Condition::Event { .. } | Condition::EventSum { .. } => {
                let ctx = Ctx {
                    from_history: true,
                    ..self.ctx(t)
                };
                matches(cond, no, &ctx)
            }
            Condition::InSegment(id) => self
                .segments
                .get(id)
                .is_some_and(|s| s.members.contains(no)),
        }
    }

    /// Instants after `now` at which a leaf of `cond` can change.
    fn candidates(&self, cond: &Condition, no: u32, now: DateTime, out: &mut Vec<DateTime>) {
        match cond {
            Condition::All(children) | Condition::Any(children) => children
                .iter()
                .for_each(|c| self.candidates(c, no, now, out)),
            Condition::Not(inner) => self.candidates(inner, no, now, out),
            // Only relative-date tests flip with time, and those never ignore case.
            Condition::Field { field, test, .. } => {
                let Some(index) = self.fields.index(field) else {
                    return;
                };
                if index == LEAD_SCORE && self.rules.any_expiring() {
                    let mut t = now;
                    while out.len() <= MAX_CANDIDATES {
                        let (_, expiry) = self.rule_score(no, t);
                        if expiry >= NEVER {
                            break;
                        }
                        out.push(expiry);
                        t = expiry;
                    }
                    return;
                }
                let value = self.contacts.column(index).get_ref(no);
                let mut t = now;
                // `in last` can flip twice: in when the value's time comes, out at its end.
                for _ in 0..2 {
                    match flip_instant(value, test, t) {
                        Some(flip) => {
                            out.push(flip);
                            t = flip;
                        }
                        None => break,
                    }
                }
            }
            Condition::Event {
                in_last: Some(d), ..
            }
            | Condition::EventSum {
                in_last: Some(d), ..
            } => {
                for event in self.events.of(no) {
                    let exit = crate::time::add(event.at, *d).saturating_add(1);
                    if exit > now && exit < NEVER {
                        out.push(exit);
                    }
                }
            }
            _ => {}
        }
    }
}
