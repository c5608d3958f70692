//! What one segment edit that makes every contact enter costs with an
//! active `segment_entered` workflow: the edit's engine time, the triggers
//! it queues (and drops), the engine's memory, the records and the commit
//! to SQLite, then the runs drained 512 per write as the server's runner
//! does. Measured with no bound on the queue (how Sift behaved before the
//! bound) and with the default bound.
//!
//! A benchmark (a million contacts by default), not a test:
//! `cargo bench -p sift-store --bench fan_out`, with `SIFT_FANOUT_CONTACTS`
//! to change the size.

use std::time::Instant;

use sift_engine::{
    Action, ContactInput, DEFAULT_MAX_QUEUED, QueuedItem, RawValue, SegmentInput, SegmentKind,
    SegmentPatch, Trigger, WorkflowInput, WorkflowStatus, Workspace,
};
use sift_store::{Pending, WorkspaceDb};

const T0: i64 = 1_790_000_000_000;

fn resident_mb() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / 1e6
}

fn disk_mb(dir: &std::path::Path) -> f64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len() as f64)
        .sum::<f64>()
        / 1e6
}

fn measure(n: u32, max_queued: u64, drain: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut db = WorkspaceDb::open(&dir.path().join("ws.db")).unwrap();
    let mut ws = Workspace::new();
    ws.set_max_queued_runs(max_queued);
    let write = ws
        .declare_field("orders", sift_lang::FieldType::Number, None)
        .unwrap();
    db.commit_all([Pending::Records(&write.records)]).unwrap();
    for start in (0..n).step_by(10_000) {
        let batch: Vec<ContactInput> = (start..(start + 10_000).min(n))
            .map(|i| ContactInput {
                id: format!("c{i}"),
                properties: vec![("orders".into(), RawValue::Number(1.0))],
                anonymous: None,
            })
            .collect();
        let write = ws.upsert_contacts(&batch, T0).unwrap();
        db.commit_all([Pending::Records(&write.records)]).unwrap();
    }
    let condition = |text: &str, ws: &Workspace| sift_lang::parse_text(text, &ws.schema()).unwrap();
    let segment = SegmentInput {
        id: "big".into(),
        name: "Big".into(),
        description: String::new(),
        kind: SegmentKind::Dynamic,
        condition: Some(condition("orders >= 5", &ws)),
        test: false,
    };
    let write = ws.create_segment(segment, T0 + 1).unwrap();
    db.commit_all([Pending::Records(&write.records)]).unwrap();
    let workflow = WorkflowInput {
        id: "wf".into(),
        name: "Welcome".into(),
        status: WorkflowStatus::Active,
        test_segment: None,
        trigger: Trigger::SegmentEntered("big".into()),
        filter: None,
        actions: vec![Action::AddScore {
            points: 1.0,
            expires_after: None,
        }],
    };
    let write = ws.create_workflow(workflow, T0 + 2).unwrap();
    db.commit_all([Pending::Records(&write.records)]).unwrap();

    let (rss, disk) = (resident_mb(), disk_mb(dir.path()));
    let started = Instant::now();
    let patch = SegmentPatch {
        condition: Some(condition("orders >= 0", &ws)),
        ..SegmentPatch::default()
    };
    let write = ws.update_segment("big", patch, T0 + 3).unwrap();
    let engine_s = started.elapsed().as_secs_f64();
    let rss_edit = resident_mb() - rss;
    let started = Instant::now();
    db.commit_all([Pending::Records(&write.records)]).unwrap();
    let commit_s = started.elapsed().as_secs_f64();
    println!(
        "{n} contacts enter, queue bound {}: edit {engine_s:.2} s in the engine, {} records, \
         {} triggers queued, {} dropped; resident memory +{rss_edit:.0} MB \
         ({} B per queued trigger, held twice until committed); commit {commit_s:.2} s, \
         database +{:.1} MB",
        if max_queued == u64::MAX {
            "none".to_string()
        } else {
            max_queued.to_string()
        },
        write.records.len(),
        write.queued,
        write.dropped,
        std::mem::size_of::<QueuedItem>(),
        disk_mb(dir.path()) - disk,
    );
    drop(write);

    let started = Instant::now();
    let (mut runs, mut writes, mut slowest) = (0u64, 0u64, 0f64);
    let mut now = T0 + 4;
    while runs < drain {
        let batch = Instant::now();
        let write = ws.run_workflows(now, 512);
        if write.runs == 0 {
            break;
        }
        db.commit_all([Pending::Records(&write.records)]).unwrap();
        slowest = slowest.max(batch.elapsed().as_secs_f64());
        runs += write.runs;
        writes += 1;
        now += 1;
    }
    let drain_s = started.elapsed().as_secs_f64();
    println!(
        "  drained {runs} runs in {writes} writes, {drain_s:.2} s ({:.0} runs/s; slowest batch \
         incl. commit {:.1} ms); {} left queued",
        runs as f64 / drain_s.max(1e-9),
        slowest * 1e3,
        ws.queued_runs()
    );
}

fn main() {
    let n: u32 = std::env::var("SIFT_FANOUT_CONTACTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    // Bounded first: the process's memory then grows only by what the
    // edit itself holds (the allocator keeps what a larger run freed).
    measure(n, DEFAULT_MAX_QUEUED, u64::MAX);
    measure(n, u64::MAX, 200_000);
}
