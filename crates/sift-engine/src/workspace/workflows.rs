//! Workflow definitions: checking them at save (segments exist, action
//! targets are static, values fit their fields, no workflow sets itself off
//! directly), saving and deleting them, usages, and queueing the triggers a
//! write's changes and events cause.

use crate::members::Members;
use std::collections::HashMap;

use sift_lang::{Condition, DateTime};

use super::*;
use crate::changes::{Cause, Record};
use crate::error::{Error, Usage, UsageKind, UsageRole};
use crate::fields::{self, FieldDef};
use crate::workflows::{
    Action, MAX_ACTIONS, QueuedItem, Trigger, TriggerKind, WorkflowDef, WorkflowInput,
    WorkflowStatus,
};

fn invalid(path: impl Into<String>, message: impl Into<String>) -> Error {
    Error::InvalidWorkflow {
        path: path.into(),
        message: message.into(),
    }
}

impl Workspace {
    pub fn workflows(&self) -> &[crate::workflows::WorkflowDef] {
        self.workflows.all()
    }

    pub fn workflow(&self, id: &str) -> Option<&crate::workflows::WorkflowDef> {
        self.workflows.get(id)
    }

    /// Triggers waiting to run, of every workflow.
    pub fn queued_runs(&self) -> u64 {
        self.workflows.queued()
    }

    /// Triggers of workflow `id` waiting to run.
    pub fn queued_runs_for(&self, id: &str) -> u64 {
        self.workflows.queued_for(id)
    }

    /// Triggers of workflow `id` dropped (its queue was full) since it last
    /// started running.
    pub fn dropped_runs_for(&self, id: &str) -> Option<&crate::workflows::DroppedTriggers> {
        self.workflows.dropped_for(id)
    }

    /// Bounds the triggers of each workflow waiting to run (the server's
    /// setting; [`crate::workflows::DEFAULT_MAX_QUEUED`] until set). Not
    /// stored: it decides only what later writes queue.
    pub fn set_max_queued_runs(&mut self, max: u64) {
        self.workflows.set_max_queued(max);
    }

    /// The first trigger number not yet run, and the next one to hand out.
    pub fn run_cursor(&self) -> (u64, u64) {
        (self.workflows.cursor(), self.workflows.next_id())
    }

    /// The queued triggers not yet run, as batches (for tests and the store).
    pub fn pending_triggers(&self) -> Vec<crate::workflows::QueueBatch> {
        self.workflows.pending()
    }

    /// What refers to segment `id`: segments whose condition does, and
    /// workflows in every status, once per role.
    pub fn usages(&self, id: &str) -> Result<Vec<Usage>, Error> {
        self.segment_or_not_found(id)?;
        let mut out: Vec<Usage> = self
            .segments
            .dependents(id)
            .iter()
            .filter_map(|slot| self.segments.at(*slot))
            .map(|s| Usage {
                kind: UsageKind::Segment,
                id: s.def.id.clone(),
                name: s.def.name.clone(),
                role: UsageRole::Condition,
                status: None,
            })
            .collect();
        for def in self.workflows.all() {
            let mut roles = Vec::new();
            if def.trigger.segment() == Some(id) {
                roles.push(UsageRole::Trigger);
            }
            if def
                .filter
                .as_ref()
                .is_some_and(|f| f.segment_refs().contains(&id))
            {
                roles.push(UsageRole::Filter);
            }
            if def.actions.iter().any(
                |a| matches!(a, Action::AddToSegment(s) | Action::RemoveFromSegment(s) if s == id),
            ) {
                roles.push(UsageRole::ActionTarget);
            }
            if def.test_segment.as_deref() == Some(id) {
                roles.push(UsageRole::TestSegment);
            }
            out.extend(roles.into_iter().map(|role| Usage {
                kind: UsageKind::Workflow,
                id: def.id.clone(),
                name: def.name.clone(),
                role,
                status: Some(def.status),
            }));
        }
        Ok(out)
    }

    // -- saving ---------------------------------------------------------------

    pub fn create_workflow(&mut self, input: WorkflowInput, now: DateTime) -> Result<Write, Error> {
        if self.workflows.get(&input.id).is_some() {
            return Err(Error::Invalid(format!(
                "workflow id {:?} is taken",
                input.id
            )));
        }
        let new_fields = self.check_workflow(&input)?;
        let now = self.tick(now);
        let generation = u32::from(input.status.runs());
        self.save_workflow(input, generation, now, now, new_fields)
    }

    /// Replaces a workflow's definition (the API's PATCH merges first).
    pub fn update_workflow(&mut self, input: WorkflowInput, now: DateTime) -> Result<Write, Error> {
        let old = self
            .workflows
            .get(&input.id)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                what: "workflow",
                id: input.id.clone(),
            })?;
        let new_fields = self.check_workflow(&input)?;
        let now = self.tick(now);
        let restarts = input.status.runs() && (!old.status.runs() || old.trigger != input.trigger);
        let generation = old.generation + u32::from(restarts);
        self.save_workflow(input, generation, old.created_at, now, new_fields)
    }

    fn save_workflow(
        &mut self,
        input: WorkflowInput,
        generation: u32,
        created_at: DateTime,
        now: DateTime,
        new_fields: Vec<FieldDef>,
    ) -> Result<Write, Error> {
        // What the timers did on the way to `now` happened before the save:
        // it is sealed (and triggers workflows) as the definitions were.
        let mut before = self.finish(Write::default());
        let mut write = Write::default();
        for def in new_fields {
            self.add_field(def.clone());
            write.records.push(Record::Field(def));
        }
        let def = WorkflowDef {
            id: input.id,
            name: input.name.trim().to_string(),
            status: input.status,
            test_segment: input.test_segment,
            trigger: input.trigger,
            filter: input.filter,
            actions: input.actions,
            generation,
            created_at,
            updated_at: now,
        };
        self.workflows.put(def.clone(), &mut self.events);
        write.records.push(Record::Workflow(def));
        let mut write = self.finish(write);
        before.records.append(&mut write.records);
        write.records = before.records;
        write.queued += before.queued;
        write.dropped += before.dropped;
        write.membership_changes += before.membership_changes;
        Ok(write)
    }

    /// Deletes a workflow; its queued triggers are dropped unrun.
    pub fn delete_workflow(&mut self, id: &str, now: DateTime) -> Result<Write, Error> {
        if self.workflows.get(id).is_none() {
            return Err(Error::NotFound {
                what: "workflow",
                id: id.to_string(),
            });
        }
        self.tick(now);
        self.workflows.remove(id, &mut self.events);
        Ok(self.finish(Write {
            records: vec![Record::WorkflowDeleted { id: id.to_string() }],
            ..Write::default()
        }))
    }

    /// Checks a workflow; answers the fields its `set_property` actions
    /// create (a new field's type is inferred from the value, as a contact
    /// write would).
    fn check_workflow(&self, input: &WorkflowInput) -> Result<Vec<FieldDef>, Error> {
        let name = input.name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(invalid(
                "name",
                "a workflow name must have 1 to 200 characters and no control characters",
            ));
        }
        let key = name.to_lowercase();
        if self
            .workflows
            .all()
            .iter()
            .any(|w| w.id != input.id && w.name.to_lowercase() == key)
        {
            return Err(Error::WorkflowNameTaken(name.to_string()));
        }
        self.check_test_segment(input)?;
        match &input.trigger {
            Trigger::SegmentEntered(id) | Trigger::SegmentExited(id) => {
                self.existing_segment("trigger.segment", id)?;
            }
            Trigger::Event { event_type, filter } => {
                if event_type.is_empty()
                    || event_type.len() > 128
                    || event_type.chars().any(char::is_control)
                {
                    return Err(invalid(
                        "trigger.event_type",
                        "an event type must be 1 to 128 bytes without control characters",
                    ));
                }
                if let Some(filter) = filter {
                    check_supported(&Condition::Event {
                        event_type: event_type.clone(),
                        filter: Some(Box::new(filter.clone())),
                        count: None,
                        in_last: None,
                    })?;
                }
            }
        }
        if let Some(filter) = &input.filter {
            check_supported(filter)?;
            for target in filter.segment_refs() {
                self.existing_segment("filter", target)?;
            }
        }
        if input.actions.is_empty() || input.actions.len() > MAX_ACTIONS {
            return Err(invalid(
                "actions",
                format!("a workflow has 1 to {MAX_ACTIONS} actions"),
            ));
        }
        let mut new_fields: HashMap<String, FieldDef> = HashMap::new();
        for (i, action) in input.actions.iter().enumerate() {
            self.check_action(i, action, &input.trigger, &mut new_fields)?;
        }
        let mut created: Vec<FieldDef> = new_fields.into_values().collect();
        created.sort_by(|a, b| a.name.cmp(&b.name));
        for (i, def) in created.iter().enumerate() {
            self.check_new_field(&def.name, i + 1)?;
        }
        Ok(created)
    }

    fn check_test_segment(&self, input: &WorkflowInput) -> Result<(), Error> {
        let Some(id) = &input.test_segment else {
            if input.status == WorkflowStatus::Test {
                return Err(invalid(
                    "test_segment",
                    "a workflow in test mode runs only for the contacts of its test segment: give \"test_segment\", a static segment created with \"test\": true",
                ));
            }
            return Ok(());
        };
        let segment = self.existing_segment("test_segment", id)?;
        if segment.def.kind != SegmentKind::Static || !segment.def.test {
            return Err(invalid(
                "test_segment",
                format!(
                    "segment {:?} is not a test segment: a test segment is a static segment created with \"test\": true",
                    segment.def.name
                ),
            ));
        }
        Ok(())
    }

    fn existing_segment(&self, path: &str, id: &str) -> Result<&Segment, Error> {
        self.segments
            .get(id)
            .ok_or_else(|| invalid(path, format!("segment {id:?} does not exist")))
    }

    fn check_action(
        &self,
        i: usize,
        action: &Action,
        trigger: &Trigger,
        new_fields: &mut HashMap<String, FieldDef>,
    ) -> Result<(), Error> {
        let at = |part: &str| format!("actions[{i}].{part}");
        match action {
            Action::AddToSegment(id) | Action::RemoveFromSegment(id) => {
                let segment = self.existing_segment(&at("segment"), id)?;
                if segment.def.kind != SegmentKind::Static {
                    return Err(invalid(
                        at("segment"),
                        format!(
                            "segment {:?} is dynamic: its members follow its condition; {} takes a static segment",
                            segment.def.name,
                            action.type_name()
                        ),
                    ));
                }
                let loops = match (trigger, action) {
                    (Trigger::SegmentEntered(t), Action::AddToSegment(a)) => t == a,
                    (Trigger::SegmentExited(t), Action::RemoveFromSegment(a)) => t == a,
                    _ => false,
                };
                if loops {
                    let (verb, change) = match action {
                        Action::AddToSegment(_) => ("adding contacts to", "enter"),
                        _ => ("removing contacts from", "exit"),
                    };
                    return Err(invalid(
                        format!("actions[{i}]"),
                        format!(
                            "{verb} {:?} would set off this workflow again: it is triggered when contacts {change} {:?}",
                            segment.def.name, segment.def.name
                        ),
                    ));
                }
            }
            Action::AddScore {
                points,
                expires_after,
            } => {
                if !super::scoring::points_in_bound(*points) {
                    return Err(invalid(at("points"), super::scoring::POINTS_BOUND));
                }
                if expires_after.is_some_and(|d| d.amount == 0) {
                    return Err(invalid(
                        at("expires_after"),
                        "expires_after must be a positive duration, like \"30d\"",
                    ));
                }
            }
            Action::SetProperty { field, value } => {
                let path = at("field");
                if !fields::valid_field_name(field) {
                    return Err(invalid(
                        path,
                        format!(
                            "field name {field:?} is invalid: it must match [a-z][a-z0-9_]{{0,63}}"
                        ),
                    ));
                }
                let field_type = match self.fields.get(field) {
                    Some(def) if def.system => {
                        return Err(invalid(
                            path,
                            format!("field {field:?} is kept by Sift and cannot be written"),
                        ));
                    }
                    Some(def) => def.field_type,
                    None => match new_fields.get(field) {
                        Some(def) => def.field_type,
                        None => {
                            let Some(inferred) = value.inferred_type() else {
                                return Err(invalid(
                                    at("value"),
                                    format!(
                                        "field {field:?} does not exist; a new field takes its type from the value, and {} gives none (declare the field first)",
                                        value.describe()
                                    ),
                                ));
                            };
                            new_fields.insert(
                                field.clone(),
                                FieldDef {
                                    name: field.clone(),
                                    field_type: inferred,
                                    label: default_label(field),
                                    builtin: false,
                                    system: false,
                                },
                            );
                            inferred
                        }
                    },
                };
                if Value::typed(value, field_type).is_err() {
                    let error = if crate::value::out_of_range(value, field_type) {
                        Error::DateOutOfRange {
                            field: field.clone(),
                            given: value.describe(),
                        }
                    } else {
                        Error::TypeMismatch {
                            field: field.clone(),
                            expected: field_type,
                            given: value.describe(),
                        }
                    };
                    return Err(invalid(at("value"), error.to_string()));
                }
            }
            Action::Webhook { url, secret } => {
                let rest = url
                    .strip_prefix("https://")
                    .or_else(|| url.strip_prefix("http://"));
                let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
                if url.len() > 2048
                    || url.chars().any(|c| c.is_whitespace() || c.is_control())
                    || host.is_none_or(str::is_empty)
                {
                    return Err(invalid(
                        at("url"),
                        format!("{url:?} is not an http:// or https:// URL with a host"),
                    ));
                }
                if secret
                    .as_ref()
                    .is_some_and(|s| s.is_empty() || s.len() > 256)
                {
                    return Err(invalid(
                        at("secret"),
                        "a secret has 1 to 256 bytes (leave it out to send unsigned)",
                    ));
                }
            }
        }
        Ok(())
    }

    // -- queueing triggers ------------------------------------------------------

    /// The contacts a workflow in test mode runs for (None: everyone).
    fn test_scope(&self, index: usize) -> Option<&Members> {
        let def = self.workflows.at(index);
        if def.status != WorkflowStatus::Test {
            return None;
        }
        static EMPTY: std::sync::OnceLock<Members> = std::sync::OnceLock::new();
        Some(
            def.test_segment
                .as_deref()
                .and_then(|id| self.segments.get(id))
                .map_or_else(|| EMPTY.get_or_init(Members::default), |s| &s.members),
        )
    }

    /// The running workflows event `kind` (just appended to contact `no`'s
    /// history) triggers, as hits for [`Workspace::finish`] to queue.
    pub(super) fn event_hits(
        &self,
        no: u32,
        event_id: Option<&String>,
        at: DateTime,
        write: &mut Write,
    ) {
        let Some(event) = self.events.of(no).last() else {
            return;
        };
        for (index, filter) in self.workflows.on_event(event.kind) {
            if filter
                .as_ref()
                .is_some_and(|f| !f.matches(event, &self.events.strings))
                || self.test_scope(*index).is_some_and(|m| !m.contains(no))
            {
                continue;
            }
            let event_type = self.events.types.resolve(event.kind).to_string();
            let item = QueuedItem {
                no,
                seq: None,
                event_id: event_id.cloned(),
                at,
            };
            write.event_hits.push((*index, event_type, item));
        }
    }

    /// Numbers `staged` changes into batches and appends them to `records`,
    /// then queues (and records) the triggers they and `hits` cause, at
    /// cascade depth `depth`, as far as each workflow's queue bound allows.
    /// Answers how many triggers were queued and how many dropped.
    pub(super) fn seal(
        &mut self,
        staged: staging::Staged,
        hits: Vec<(usize, String, QueuedItem)>,
        depth: u32,
        records: &mut Vec<Record>,
    ) -> (u64, u64) {
        let batches = staged.into_batches(&mut self.next_seq);
        let at = self.clock;
        let mut queued = Vec::new();
        let mut dropped = Vec::new();
        let mut enqueue = |workflows: &mut crate::workflows::Workflows,
                           index: usize,
                           trigger: TriggerKind,
                           items: Vec<QueuedItem>,
                           beyond: u64| {
            let (batch, drop) = workflows.enqueue(index, depth, trigger, items, beyond, at);
            queued.extend(batch);
            dropped.extend(drop);
        };
        // Events first (they came before the changes they caused), one
        // batch per workflow, in the order of each workflow's first hit.
        let mut groups: Vec<(usize, String, Vec<QueuedItem>)> = Vec::new();
        for (index, event_type, item) in hits {
            match groups.iter_mut().find(|g| g.0 == index) {
                Some(group) => group.2.push(item),
                None => groups.push((index, event_type, vec![item])),
            }
        }
        for (index, event_type, items) in groups {
            let trigger = TriggerKind::Event { event_type };
            enqueue(&mut self.workflows, index, trigger, items, 0);
        }
        if self.workflows.watches_changes() {
            for batch in &batches {
                // A deleted contact is gone: nothing can run for it.
                if batch.cause == Cause::ContactDelete {
                    continue;
                }
                for index in self
                    .workflows
                    .on_change(&batch.segment_id, batch.kind)
                    .to_vec()
                {
                    let scope = self.test_scope(index);
                    // Only what fits is materialised: a change of a million
                    // contacts past a full queue costs a count, not a list.
                    let room = self.workflows.room(index) as usize;
                    let mut items: Vec<QueuedItem> = Vec::new();
                    let mut beyond = 0u64;
                    let triggering = batch
                        .contacts
                        .iter()
                        .enumerate()
                        .filter(|(_, no)| scope.is_none_or(|m| m.contains(*no)))
                        // A merged-away contact's exits run nothing: it is gone.
                        .filter(|(_, no)| {
                            batch.cause != Cause::Merge || self.contacts.is_alive(*no)
                        });
                    for (k, no) in triggering {
                        if items.len() < room {
                            items.push(QueuedItem {
                                no,
                                seq: Some(batch.seq_start + k as u64),
                                event_id: None,
                                at: batch.at,
                            });
                        } else {
                            beyond += 1;
                        }
                    }
                    if !items.is_empty() || beyond > 0 {
                        let trigger = TriggerKind::Change {
                            segment_id: batch.segment_id.clone(),
                            kind: batch.kind,
                        };
                        enqueue(&mut self.workflows, index, trigger, items, beyond);
                    }
                }
            }
        }
        records.extend(batches.into_iter().map(Record::Changes));
        let count = queued.iter().map(|b| b.items.len() as u64).sum();
        let lost = dropped.iter().map(|d| d.count).sum();
        records.extend(queued.into_iter().map(Record::Triggers));
        records.extend(dropped.into_iter().map(Record::TriggersDropped));
        (count, lost)
    }
}
