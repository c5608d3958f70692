//! Running workflows: consuming queued triggers in number order, each run's
//! actions applied like any write (their membership changes recorded and
//! queueing further triggers one level deeper), with the run's history
//! entry and the advanced cursor in the same write.

use roaring::RoaringBitmap;
use sift_lang::DateTime;

use super::*;
use crate::changes::{Cause, Record};
use crate::fields::LEAD_SCORE;
use crate::time::add;
use crate::workflows::{
    Action, ActionDone, ActionResult, MAX_CASCADE_DEPTH, QueueHead, QueuedItem, RunRecord,
    RunStatus, ScoreGrant, WebhookCall, WorkflowStatus,
};

impl Workspace {
    /// Runs up to `limit` queued triggers at `now`, oldest first. The
    /// answer's records hold every run's effects, history entry and the
    /// advanced cursor: committed together, a restart neither loses nor
    /// repeats a run. `Write::runs` counts the triggers consumed; an empty
    /// queue answers an empty write.
    pub fn run_workflows(&mut self, now: DateTime, limit: usize) -> Write {
        if self.workflows.queued() == 0 {
            return Write::default();
        }
        let now = self.tick(now);
        // The changes timers made on the way come first, as in any write.
        let mut out = self.finish(Write::default());
        // Consecutive runs of one depth share their changes' numbering, so
        // that many runs adding to one segment make one change batch.
        let mut part = Write::default();
        while (out.runs as usize) < limit {
            let Some((id, item, head)) = self.workflows.pop() else {
                break;
            };
            out.runs += 1;
            if part.depth != head.depth + 1 {
                self.seal_part(&mut part, &mut out);
                part.depth = head.depth + 1;
            }
            self.run_one(id, item, &head, now, &mut part);
        }
        self.seal_part(&mut part, &mut out);
        out.records.push(Record::RunCursor(self.workflows.cursor()));
        out.records.push(Record::Clock(self.clock));
        out
    }

    /// Moves a part of a run write into `out`: its records, then its
    /// changes, numbered, and the triggers they queue one level deeper.
    fn seal_part(&mut self, part: &mut Write, out: &mut Write) {
        out.records.append(&mut part.records);
        out.membership_changes += std::mem::take(&mut part.membership_changes);
        out.actions += std::mem::take(&mut part.actions);
        out.webhooks += std::mem::take(&mut part.webhooks);
        let staged = std::mem::take(&mut part.staged);
        let hits = std::mem::take(&mut part.event_hits);
        let (queued, dropped) = self.seal(staged, hits, part.depth, &mut out.records);
        out.queued += queued;
        out.dropped += dropped;
    }

    /// A write that only records a webhook delivery attempt (the outbox is
    /// the server's; the engine keeps nothing of it).
    pub fn webhook_attempt(&mut self, attempt: crate::workflows::WebhookAttempt) -> Write {
        Write {
            records: vec![Record::WebhookAttempt(attempt)],
            ..Write::default()
        }
    }

    /// Runs trigger `id` for its contact, or drops it when its workflow is
    /// gone, not running, or was restarted since (see `generation`).
    fn run_one(
        &mut self,
        id: u64,
        item: QueuedItem,
        head: &QueueHead,
        now: DateTime,
        write: &mut Write,
    ) {
        let Some(index) = self.workflows.index(&head.workflow_id) else {
            return;
        };
        let def = self.workflows.at(index);
        if def.generation != head.generation || !def.status.runs() {
            return;
        }
        let no = item.no;
        let mut run = RunRecord {
            id,
            workflow_id: def.id.clone(),
            no,
            contact_id: self.contacts.id(no).to_string(),
            trigger: head.trigger.clone(),
            item,
            depth: head.depth,
            test: def.status == WorkflowStatus::Test,
            status: RunStatus::Done,
            actions: Vec::new(),
            error: None,
            at: now,
        };
        let in_test = || {
            def.test_segment
                .as_deref()
                .and_then(|s| self.segments.get(s))
                .is_some_and(|s| s.members.contains(no))
        };
        let skip = if !self.contacts.is_alive(no) {
            Some((RunStatus::Skipped, "the contact was deleted".to_string()))
        } else if head.depth >= MAX_CASCADE_DEPTH {
            Some((
                RunStatus::Stopped,
                format!(
                    "stopped: cascade depth limit ({MAX_CASCADE_DEPTH} levels of workflows setting off workflows) reached"
                ),
            ))
        } else if run.test && !in_test() {
            Some((
                RunStatus::Skipped,
                "the contact is no longer in the test segment".to_string(),
            ))
        } else if def
            .filter
            .as_ref()
            .is_some_and(|f| !matches(f, no, &self.ctx(now)))
        {
            Some((RunStatus::Filtered, String::new()))
        } else {
            None
        };
        if let Some((status, error)) = skip {
            run.status = status;
            run.error = (!error.is_empty()).then_some(error);
            write.records.push(Record::Run(run));
            return;
        }
        let n_actions = def.actions.len();
        for i in 0..n_actions {
            let action = self.workflows.at(index).actions[i].clone();
            match self.apply_action(&action, i as u32, &run, now, write) {
                Ok(result) => {
                    write.actions += 1;
                    if matches!(action, Action::Webhook { .. }) {
                        write.webhooks += 1;
                    }
                    run.actions.push(ActionDone {
                        index: i as u32,
                        kind: action.action_type(),
                        result,
                    })
                }
                Err(message) => {
                    run.status = RunStatus::Failed;
                    run.error = Some(format!(
                        "action {i} ({}) failed: {message}",
                        action.type_name()
                    ));
                    break;
                }
            }
        }
        write.records.push(Record::Run(run));
    }

    /// Applies one action for the run's contact; answers what it did, or why
    /// it failed (the run's `error`, for a person to read).
    fn apply_action(
        &mut self,
        action: &Action,
        index: u32,
        run: &RunRecord,
        now: DateTime,
        write: &mut Write,
    ) -> Result<ActionResult, String> {
        let no = run.no;
        match action {
            Action::AddToSegment(id) | Action::RemoveFromSegment(id) => {
                let add = matches!(action, Action::AddToSegment(_));
                let member = self
                    .segments
                    .get(id)
                    .ok_or_else(|| format!("segment {id:?} no longer exists"))?
                    .members
                    .contains(no);
                if member == add {
                    return Ok(if add {
                        ActionResult::AlreadyMember
                    } else {
                        ActionResult::NotMember
                    });
                }
                self.apply_static(id, RoaringBitmap::from_iter([no]), add, now, write);
                Ok(if add {
                    ActionResult::Added
                } else {
                    ActionResult::Removed
                })
            }
            Action::AddScore {
                points,
                expires_after,
            } => {
                let expires_at = expires_after.map(|d| add(now, d));
                self.grants.add(no, *points, expires_at, run.id);
                let before = self.lead_score(no);
                let score = before + points;
                let mut slots = Vec::new();
                self.set_tracked(no, LEAD_SCORE, Some(Value::Number(score)), now, &mut slots);
                if let Some(at) = expires_at {
                    self.timers.schedule(no, at);
                }
                write.records.push(Record::ScoreGrant(ScoreGrant {
                    run_id: run.id,
                    action: index,
                    no,
                    points: *points,
                    at: now,
                    expires_at,
                }));
                self.propagate_contact(no, slots, true, Cause::ContactUpdate, now, write);
                Ok(ActionResult::Added)
            }
            Action::SetProperty { field, value } => {
                let input = ContactInput {
                    id: run.contact_id.clone(),
                    properties: vec![(field.clone(), value.clone())],
                    anonymous: None,
                };
                self.check_input(&input, &mut std::collections::HashMap::new())
                    .map_err(|e| e.to_string())?;
                if self.fields.get(field).is_none() {
                    return Err(format!("field {field:?} no longer exists"));
                }
                self.apply_input(&input, now, Cause::ContactUpdate, write);
                Ok(ActionResult::Set)
            }
            Action::Webhook { url, secret } => {
                let contact = self
                    .contact(no)
                    .ok_or_else(|| "the contact was deleted".to_string())?;
                write.records.push(Record::Webhook(WebhookCall {
                    id: format!("run_{}_{index}", run.id),
                    run_id: run.id,
                    workflow_id: run.workflow_id.clone(),
                    url: url.clone(),
                    secret: secret.clone(),
                    contact,
                    trigger: run.trigger.clone(),
                    item: run.item.clone(),
                    test: run.test,
                    at: now,
                }));
                Ok(ActionResult::Queued)
            }
        }
    }
}
