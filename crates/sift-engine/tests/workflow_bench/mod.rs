//! What the workflow tests share: a workspace with its memory store and a
//! clock, and the "when a contact enters VIP, add it to Gifted and add 10
//! points" set-up.

#![allow(dead_code)]

use sift_engine::{
    Action, ContactInput, Error, EventInput, MemoryStore, RawValue, RunStatus, SegmentInput,
    SegmentKind, Store, Trigger, WorkflowInput, WorkflowStatus, Workspace, Write,
};
use sift_lang::parse_text;

pub const NOW: i64 = 1_790_000_000_000;

pub struct Bench {
    pub ws: Workspace,
    pub store: MemoryStore,
    pub now: i64,
}

impl Bench {
    pub fn new() -> Bench {
        Bench {
            ws: Workspace::new(),
            store: MemoryStore::default(),
            now: NOW,
        }
    }

    pub fn keep(&mut self, write: Write) -> Write {
        self.store.commit(&[&write.records]).expect("memory store");
        write
    }

    pub fn tick(&mut self) -> i64 {
        self.now += 1_000;
        self.now
    }

    pub fn segment(&mut self, id: &str, condition: Option<&str>, test: bool) {
        let condition = condition.map(|text| parse_text(text, &self.ws.schema()).unwrap());
        let now = self.tick();
        let write = self
            .ws
            .create_segment(
                SegmentInput {
                    id: id.into(),
                    name: id.into(),
                    description: String::new(),
                    kind: if condition.is_some() {
                        SegmentKind::Dynamic
                    } else {
                        SegmentKind::Static
                    },
                    condition,
                    test,
                },
                now,
            )
            .unwrap();
        self.keep(write);
    }

    pub fn workflow(&mut self, input: WorkflowInput) -> Result<Write, Error> {
        let now = self.tick();
        let write = self.ws.create_workflow(input, now)?;
        Ok(self.keep(write))
    }

    pub fn upsert(&mut self, id: &str, properties: Vec<(&str, RawValue)>) {
        let now = self.tick();
        let input = ContactInput {
            id: id.into(),
            properties: properties
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            anonymous: None,
        };
        let write = self.ws.upsert_contacts(&[input], now).unwrap();
        self.keep(write);
    }

    pub fn orders(&mut self, id: &str, n: f64) {
        self.upsert(id, vec![("orders", RawValue::Number(n))]);
    }

    pub fn event(&mut self, contact: &str, kind: &str, amount: f64) {
        let now = self.tick();
        let event = EventInput {
            contact_id: contact.into(),
            event_type: kind.into(),
            properties: vec![("amount".into(), RawValue::Number(amount))],
            properties_json: format!("{{\"amount\":{amount}}}"),
            ..EventInput::default()
        };
        let write = self.ws.ingest_events(&[event], now).unwrap();
        self.keep(write);
    }

    /// Runs everything queued, a few triggers per write.
    pub fn run_all(&mut self) {
        loop {
            let now = self.tick();
            let write = self.ws.run_workflows(now, 3);
            if write.runs == 0 {
                return;
            }
            self.keep(write);
        }
    }

    pub fn members(&self, id: &str) -> Vec<String> {
        self.ws
            .segment(id)
            .unwrap()
            .members
            .bitmap()
            .iter()
            .map(|no| self.ws.contacts().id(no).to_string())
            .collect()
    }

    pub fn score(&self, id: &str) -> f64 {
        let no = self.ws.lookup(id).unwrap();
        self.ws.contact(no).unwrap().lead_score
    }

    pub fn runs(&self, workflow: &str) -> Vec<(String, RunStatus)> {
        self.store
            .runs()
            .iter()
            .filter(|r| r.workflow_id == workflow)
            .map(|r| (r.contact_id.clone(), r.status))
            .collect()
    }
}

pub fn workflow(id: &str, trigger: Trigger, actions: Vec<Action>) -> WorkflowInput {
    WorkflowInput {
        id: id.into(),
        name: id.into(),
        status: WorkflowStatus::Active,
        test_segment: None,
        trigger,
        filter: None,
        actions,
    }
}

pub fn gift() -> Vec<Action> {
    vec![
        Action::AddToSegment("gifted".into()),
        Action::AddScore {
            points: 10.0,
            expires_after: None,
        },
    ]
}

/// VIP (dynamic) and Gifted (static), and "when a contact enters VIP, add
/// it to Gifted and add 10 points".
pub fn vip_bench() -> Bench {
    let mut bench = Bench::new();
    bench
        .ws
        .declare_field("orders", sift_lang::FieldType::Number, None)
        .unwrap();
    bench.segment("vip", Some("orders >= 5"), false);
    bench.segment("gifted", None, false);
    bench
        .workflow(workflow(
            "gift",
            Trigger::SegmentEntered("vip".into()),
            gift(),
        ))
        .unwrap();
    bench
}

pub trait Members {
    fn members_of(&self, id: &str) -> Vec<u32>;
}

impl Members for Workspace {
    fn members_of(&self, id: &str) -> Vec<u32> {
        self.segment(id).unwrap().members.bitmap().iter().collect()
    }
}
