//! The SQLite store against the in-memory one: the same writes committed to
//! both (in groups, as the server's writer does) must load back into the same
//! workspace — fields with their types and labels, contacts with their data
//! and scores, tombstoned ids, segment definitions, memberships (event
//! conditions included), scoring rules, the clock, pending timers, the event
//! ids already accepted, the next seq, and aliases with the merged
//! histories and memberships identify left. After a restart, advancing the
//! loaded workspace to a later instant fires the same timers as the live one.
//! Every test replays the script of `conformance_run` from the start.

mod conformance_run;

use conformance_run::{DAY, Run, event};
use sift_engine::{EngineCheckpoint, MemoryStore, Record, Store, Workspace};
use sift_store::checkpoint;

fn summary(ws: &Workspace) -> String {
    let mut out = String::new();
    for field in ws.fields() {
        out += &format!(
            "field {} {} {:?} {} {}\n",
            field.name,
            field.field_type.name(),
            field.label,
            field.builtin,
            field.system
        );
    }
    let mut ids: Vec<u32> = ws.contacts().alive().iter().collect();
    ids.sort();
    for no in ids {
        // A contact's segments are listed in slot order, which a restart
        // does not keep; the set is what must survive.
        let view = ws.contact(no).map(|mut view| {
            view.segments.sort();
            view
        });
        out += &format!("contact {view:?}\n");
    }
    for no in 0..ws.contacts().capacity() {
        out += &format!("id {no} {}\n", ws.contacts().id(no));
    }
    let mut segments: Vec<_> = ws.segments().iter().map(|(_, s)| s).collect();
    segments.sort_by(|a, b| a.def.id.cmp(&b.def.id));
    for segment in segments {
        out += &format!(
            "segment {:?} {:?}\n",
            segment.def,
            segment.members.bitmap().iter().collect::<Vec<_>>()
        );
    }
    for rule in ws.scoring_rules() {
        out += &format!("rule {rule:?}\n");
    }
    for workflow in ws.workflows() {
        out += &format!("workflow {workflow:?}\n");
    }
    for batch in ws.pending_triggers() {
        out += &format!("queued {batch:?}\n");
    }
    out += &format!("aliases {:?}\n", ws.aliases());
    out += &format!("run cursor {:?}\n", ws.run_cursor());
    out += &format!("clock {}\n", ws.clock());
    out += &format!("next timer {:?}\n", ws.next_timer());
    out += &format!("next seq {}\n", ws.next_seq());
    out
}

/// Equal summaries, or a panic showing only the lines that differ.
#[track_caller]
fn assert_same(what: &str, got: &str, expected: &str) {
    if got == expected {
        return;
    }
    let differing: Vec<String> = got
        .lines()
        .zip(expected.lines())
        .filter(|(g, e)| g != e)
        .map(|(g, e)| format!("  got      {g}\n  expected {e}"))
        .collect();
    panic!(
        "{what} differs from the live workspace ({} lines vs {}):\n{}",
        got.lines().count(),
        expected.lines().count(),
        differing.join("\n")
    );
}

/// The workspace loaded from the in-memory store and from SQLite.
fn loaded(run: &Run) -> (Workspace, Workspace) {
    (run.memory.load().unwrap(), Store::load(&run.db).unwrap())
}

/// Five days after the last write: windows and expiries have passed.
fn later(run: &Run) -> i64 {
    run.last + 5 * DAY
}

/// Catches the live workspace up to `later` and runs its queue, then
/// commits both writes to both stores, as the server would after a restart;
/// answers the two writes' records.
fn caught_up_and_stored(run: &mut Run) -> (Vec<Record>, Vec<Record>) {
    let later = later(run);
    let advance = run.ws.advance(later).records;
    let runs = run.ws.run_workflows(later, 100_000).records;
    let group: Vec<&[Record]> = vec![advance.as_slice(), runs.as_slice()];
    Store::commit(&mut run.db, &group).unwrap();
    run.memory.commit(&group).unwrap();
    (advance, runs)
}

#[test]
fn a_restart_loads_the_live_workspace_from_either_store() {
    let run = conformance_run::run();
    let live = summary(&run.ws);
    let (from_memory, from_sqlite) = loaded(&run);
    assert_same("memory load", &summary(&from_memory), &live);
    assert_same("sqlite load", &summary(&from_sqlite), &live);
    // The script reached what the comparison is meant to cover.
    assert!(live.contains("rule ScoringRule { id: \"big\""), "{live}");
    assert!(
        live.contains("field email string \"E-mail address\" true false"),
        "{live}"
    );
    assert!(
        live.contains("field lead_score number \"Score\" true true"),
        "{live}"
    );
    // Merges happened, and some merged contacts are still alive with aliases.
    assert!(run.ws.aliases().len() > 3, "{:?}", run.ws.aliases());
}

#[test]
fn a_restarted_workspace_catches_up_with_time_like_the_live_one() {
    let mut run = conformance_run::run();
    let (mut from_memory, mut from_sqlite) = loaded(&run);
    // It fires what fell due while it was down exactly as the live
    // workspace does.
    let later = later(&run);
    let live_advance = run.ws.advance(later).records;
    assert!(!live_advance.is_empty(), "nothing fell due");
    assert_eq!(from_memory.advance(later).records, live_advance);
    assert_eq!(from_sqlite.advance(later).records, live_advance);
    let live = summary(&run.ws);
    assert_same("memory catch-up", &summary(&from_memory), &live);
    assert_same("sqlite catch-up", &summary(&from_sqlite), &live);
}

#[test]
fn the_queue_left_at_a_restart_runs_the_same_from_either_store() {
    let mut run = conformance_run::run();
    let (mut from_memory, mut from_sqlite) = loaded(&run);
    let later = later(&run);
    for ws in [&mut run.ws, &mut from_memory, &mut from_sqlite] {
        ws.advance(later);
    }
    let live_runs = run.ws.run_workflows(later, 100_000).records;
    assert!(
        live_runs.iter().any(|r| matches!(r, Record::Run(_))),
        "nothing was left queued"
    );
    assert_eq!(from_memory.run_workflows(later, 100_000).records, live_runs);
    assert_eq!(from_sqlite.run_workflows(later, 100_000).records, live_runs);
    assert_same("memory runs", &summary(&from_memory), &summary(&run.ws));
    assert_same("sqlite runs", &summary(&from_sqlite), &summary(&run.ws));
}

#[test]
fn accepted_event_ids_survive_a_restart() {
    // The replayed event's contact is never deleted: what a deleted
    // contact's event ids become is the engine's decision, and its events
    // are gone from the store.
    let mut run = conformance_run::run();
    let (mut from_memory, mut from_sqlite) = loaded(&run);
    let later = later(&run);
    for ws in [&mut run.ws, &mut from_memory, &mut from_sqlite] {
        let replay = event(Some("kept".into()), "keeper", "purchase", later, "{}");
        let write = ws.ingest_events(&[replay], later).unwrap();
        assert_eq!(write.duplicates, vec![0]);
        assert_eq!(write.accepted, 0);
    }
}

#[test]
fn a_second_restart_starts_from_the_stored_catch_up_and_runs() {
    let mut run = conformance_run::run();
    caught_up_and_stored(&mut run);
    let live = summary(&run.ws);
    assert_same(
        "second load",
        &summary(&Store::load(&run.db).unwrap()),
        &live,
    );
    assert_same(
        "second memory load",
        &summary(&run.memory.load().unwrap()),
        &live,
    );
}

#[test]
fn the_stored_change_log_is_the_one_the_engine_produced() {
    let mut run = conformance_run::run();
    caught_up_and_stored(&mut run);
    let reader = sift_store::WorkspaceReader::open(&run.dir.path().join("ws.db")).unwrap();
    let stored = reader.changes(0, None, usize::MAX).unwrap();
    let produced: Vec<(u64, String, u32)> = run
        .memory
        .changes()
        .iter()
        .flat_map(|b| {
            b.contacts
                .iter()
                .enumerate()
                .map(move |(k, no)| (b.seq_start + k as u64, b.segment_id.clone(), no))
        })
        .collect();
    let read: Vec<(u64, String, u32)> = stored
        .iter()
        .map(|c| (c.seq, c.segment_id.clone(), c.no))
        .collect();
    assert_eq!(read, produced);
    // Seqs start at 1: the log holds every seq below the next one.
    assert_eq!(read.first().map(|c| c.0), Some(sift_engine::FIRST_SEQ));
    assert_eq!(
        read.len() as u64 + sift_engine::FIRST_SEQ,
        run.ws.next_seq()
    );
}

#[test]
fn the_run_history_and_the_webhook_outbox_are_stored_as_committed() {
    let mut run = conformance_run::run();
    caught_up_and_stored(&mut run);
    let reader = sift_store::WorkspaceReader::open(&run.dir.path().join("ws.db")).unwrap();
    // The run history reads newest first.
    for workflow in ["gift", "tag", "try"] {
        let mut stored = reader
            .runs(workflow, &sift_store::RunFilter::default(), usize::MAX)
            .unwrap();
        stored.reverse();
        let committed: Vec<_> = run
            .memory
            .runs()
            .iter()
            .filter(|r| r.workflow_id == workflow)
            .cloned()
            .collect();
        assert!(!committed.is_empty(), "{workflow} never ran");
        assert_eq!(stored, committed, "{workflow}");
    }
    let memory: &MemoryStore = &run.memory;
    let run_ids: Vec<u64> = memory.webhooks().iter().map(|w| w.run_id).collect();
    let deliveries = reader.deliveries_of(&run_ids).unwrap();
    assert_eq!(deliveries.len(), memory.webhooks().len());
    assert!(!deliveries.is_empty(), "no webhook was queued");
    assert!(
        deliveries
            .iter()
            .all(|d| d.state == "pending" && d.attempts == 0)
    );
}

/// A start that streams the events (what the server does: memory keeps only
/// the recent ones) loads the live workspace, from either store, and
/// catches up with time like it.
#[test]
fn a_streaming_restart_loads_and_catches_up_like_the_live_workspace() {
    let mut run = conformance_run::run();
    let stream = sift_store::EventStream::new(&run.dir.path().join("ws.db"));
    let mut from_sqlite = run
        .db
        .load_streaming(sift_engine::HistorySource(std::sync::Arc::new(stream)))
        .unwrap();
    let shared = std::sync::Arc::new(std::sync::RwLock::new(run.memory.clone()));
    let mut from_memory = run.memory.load_streaming(shared).unwrap();
    let live = summary(&run.ws);
    assert_same("streaming sqlite load", &summary(&from_sqlite), &live);
    assert_same("streaming memory load", &summary(&from_memory), &live);
    assert!(from_sqlite.on_disk());
    assert!(
        from_sqlite.event_count() <= run.ws.event_count(),
        "memory keeps at most the live workspace's events: {} of {}",
        from_sqlite.event_count(),
        run.ws.event_count()
    );
    let later = later(&run);
    let live_advance = run.ws.advance(later).records;
    assert_eq!(from_sqlite.advance(later).records, live_advance);
    assert_eq!(from_memory.advance(later).records, live_advance);
    let live = summary(&run.ws);
    assert_same("streaming sqlite catch-up", &summary(&from_sqlite), &live);
}

/// The script with a checkpoint of the live workspace written after the
/// first group commit at or after each step of `at` (a commit boundary,
/// where the server takes one), as `ws.checkpoint.<write>.db` beside the
/// store.
///
/// Like the server, which turns its copy into parts while writes go on,
/// each copy is turned into parts only a few steps later: a copy shares
/// pages with the live workspace, and the writes in between must not show
/// through. The parts are checked against those of a copy taken at the
/// same moment and turned into parts at once.
fn run_with_checkpoints(at: &[u32]) -> Run {
    const LATER: u32 = 7;
    let mut due: Vec<u32> = at.to_vec();
    let mut taken: Option<(u32, Workspace, checkpoint::CheckpointMeta, EngineCheckpoint)> = None;
    let write = |dir: &std::path::Path, copy: Workspace, meta, deep: &EngineCheckpoint| {
        let ckpt = copy.into_checkpoint();
        assert_eq!(&ckpt, deep, "a write after the copy showed through it");
        checkpoint::write(dir, "ws", meta, &ckpt, &|| {}).unwrap();
    };
    let run = conformance_run::run_with(|step, ws, db, dir| {
        if taken.as_ref().is_some_and(|(at, ..)| step >= at + LATER)
            && let Some((_, copy, meta, deep)) = taken.take()
        {
            write(dir, copy, meta, &deep);
        }
        if due.first().is_some_and(|first| step >= *first) {
            due.remove(0);
            if let Some((_, copy, meta, deep)) = taken.take() {
                write(dir, copy, meta, &deep);
            }
            let meta = checkpoint::CheckpointMeta {
                write_number: db.last_write(),
                clock: ws.clock(),
                taken_at: 0,
            };
            // Turned into parts before any later write: the expected ones.
            let deep = ws.checkpoint_copy().into_checkpoint();
            taken = Some((step, ws.checkpoint_copy(), meta, deep));
        }
    });
    if let Some((_, copy, meta, deep)) = taken.take() {
        write(run.dir.path(), copy, meta, &deep);
    }
    run
}

/// Writes after the last checkpoint that a start must catch up with: a
/// segment created and one edited.
fn late_segment_writes(run: &mut Run) {
    let now = run.last;
    let condition = sift_lang::parse_text(
        "performed page_visit at least 2 times in last 3 days or orders >= 8",
        &run.ws.schema(),
    )
    .unwrap();
    let created = run
        .ws
        .create_segment(
            sift_engine::SegmentInput {
                id: "late".into(),
                name: "Late".into(),
                description: String::new(),
                kind: sift_engine::SegmentKind::Dynamic,
                condition: Some(condition),
                test: false,
            },
            now,
        )
        .unwrap();
    let edit =
        sift_lang::parse_text("orders >= 3 and newsletter = true", &run.ws.schema()).unwrap();
    let edited = run
        .ws
        .update_segment(
            "vip",
            sift_engine::SegmentPatch {
                condition: Some(edit),
                ..sift_engine::SegmentPatch::default()
            },
            now,
        )
        .unwrap();
    let group: Vec<&[Record]> = vec![created.records.as_slice(), edited.records.as_slice()];
    Store::commit(&mut run.db, &group).unwrap();
    run.memory.commit(&group).unwrap();
}

/// Every dynamic segment's members equal a from-scratch evaluation.
#[track_caller]
fn assert_evaluated_afresh(ws: &Workspace) {
    for (_, segment) in ws.segments().iter() {
        if let Some(condition) = &segment.def.condition {
            let fresh = ws.preview(condition, ws.clock()).unwrap();
            assert_eq!(
                *segment.members.bitmap(),
                fresh,
                "segment {}",
                segment.def.id
            );
        }
    }
}

#[test]
fn a_start_from_a_checkpoint_equals_the_live_workspace_and_a_full_rebuild() {
    let mut run = run_with_checkpoints(&[300]);
    late_segment_writes(&mut run);
    let (mut from_checkpoint, report) =
        checkpoint::load(&run.db, run.dir.path(), "ws", None).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert!(report.checkpoint.is_some(), "the checkpoint was not used");
    let capacity = run.ws.contacts().capacity() as usize;
    assert!(
        report.reloaded > 0 && report.reloaded < capacity,
        "{} of {capacity} contacts reloaded",
        report.reloaded
    );
    let mut full = Store::load(&run.db).unwrap();
    let expected = summary(&run.ws);
    assert_same(
        "a start from a checkpoint",
        &summary(&from_checkpoint),
        &expected,
    );
    assert_same("a full rebuild", &summary(&full), &expected);
    assert_evaluated_afresh(&from_checkpoint);

    // The restart's own catch-up numbers the same changes from the same
    // seq: none repeated, none skipped.
    let later = later(&run);
    let caught_up = from_checkpoint.advance(later).records;
    let rebuilt = full.advance(later).records;
    let live = run.ws.advance(later).records;
    assert_eq!(format!("{caught_up:?}"), format!("{rebuilt:?}"));
    assert_eq!(format!("{caught_up:?}"), format!("{live:?}"));
    assert_same(
        "after catching up",
        &summary(&from_checkpoint),
        &summary(&run.ws),
    );
    assert_evaluated_afresh(&from_checkpoint);
}

#[test]
fn a_damaged_checkpoint_falls_back_to_the_previous_one_then_to_a_full_rebuild() {
    let mut run = run_with_checkpoints(&[200, 400]);
    late_segment_writes(&mut run);
    let found = checkpoint::list(run.dir.path(), "ws").unwrap();
    assert_eq!(found.len(), 2);
    let (newest, older) = (found[0].1.clone(), found[1].1.clone());

    // Bytes flipped inside a part: its checksum no longer matches.
    {
        let conn = rusqlite::Connection::open(&newest).unwrap();
        conn.execute(
            "UPDATE parts SET data = CAST(zeroblob(length(data)) AS BLOB) WHERE name = 'events'",
            [],
        )
        .unwrap();
    }
    let (ws, report) = checkpoint::load(&run.db, run.dir.path(), "ws", None).unwrap();
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].path, newest);
    assert!(
        report.rejected[0].reason.contains("checksum"),
        "{}",
        report.rejected[0].reason
    );
    assert_eq!(report.checkpoint.as_ref().map(|c| &c.0), Some(&older));
    assert_same(
        "a start from the older checkpoint",
        &summary(&ws),
        &summary(&run.ws),
    );
    assert_evaluated_afresh(&ws);

    // The older one cut short as well: a full rebuild.
    let len = std::fs::metadata(&older).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&older)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let (ws, report) = checkpoint::load(&run.db, run.dir.path(), "ws", None).unwrap();
    assert_eq!(report.rejected.len(), 2, "{:?}", report.rejected);
    assert!(report.checkpoint.is_none());
    assert_same("a full rebuild", &summary(&ws), &summary(&run.ws));
}

#[test]
fn only_the_newest_two_checkpoints_are_kept_and_drafts_are_never_read() {
    let run = run_with_checkpoints(&[100, 200, 300]);
    let draft = run
        .dir
        .path()
        .join(".ws.checkpoint.00000000000000099999.db.draft");
    std::fs::write(&draft, b"cut by a crash").unwrap();
    assert_eq!(checkpoint::list(run.dir.path(), "ws").unwrap().len(), 3);
    checkpoint::prune(run.dir.path(), "ws").unwrap();
    let kept = checkpoint::list(run.dir.path(), "ws").unwrap();
    assert_eq!(kept.len(), checkpoint::KEEP);
    assert!(kept[0].0 > kept[1].0);
    assert!(!draft.exists());
}

/// A scoring rule written after a checkpoint changes the score of every
/// contact with events of its type, none of which the write names: the
/// next start must still have their new scores (and the memberships that
/// read them).
#[test]
fn a_rule_written_after_a_checkpoint_rescores_contacts_it_never_named() {
    let mut run = run_with_checkpoints(&[590]);
    let write = run
        .ws
        .create_scoring_rule(
            sift_engine::ScoringRuleInput {
                id: "late".into(),
                event_type: "purchase".into(),
                filter: None,
                points: 7.0,
                expires_after: None,
            },
            run.last,
        )
        .unwrap();
    assert!(write.rescored > 1, "{} rescored", write.rescored);
    let group: Vec<&[Record]> = vec![write.records.as_slice()];
    Store::commit(&mut run.db, &group).unwrap();
    run.memory.commit(&group).unwrap();
    let (ws, report) = checkpoint::load(&run.db, run.dir.path(), "ws", None).unwrap();
    assert!(report.checkpoint.is_some(), "{:?}", report.rejected);
    assert_same(
        "a start from a checkpoint",
        &summary(&ws),
        &summary(&run.ws),
    );
    assert_evaluated_afresh(&ws);
}

/// Once the touched rows up to a checkpoint's write are forgotten (the
/// server forgets up to its oldest kept checkpoint), an older checkpoint
/// can no longer be caught up: it is passed over, never used half-blind.
#[test]
fn a_checkpoint_older_than_the_forgotten_touched_rows_is_not_used() {
    let mut run = run_with_checkpoints(&[200, 400]);
    let found = checkpoint::list(run.dir.path(), "ws").unwrap();
    let (newest, older) = (&found[0], &found[1]);
    run.db
        .commit_all([sift_store::Pending::ForgetTouched(newest.0)])
        .unwrap();
    std::fs::remove_file(&newest.1).unwrap();
    let (ws, report) = checkpoint::load(&run.db, run.dir.path(), "ws", None).unwrap();
    assert!(report.checkpoint.is_none());
    assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
    assert_eq!(report.rejected[0].path, older.1);
    assert!(
        report.rejected[0].reason.contains("no longer records"),
        "{}",
        report.rejected[0].reason
    );
    assert_same("a full rebuild", &summary(&ws), &summary(&run.ws));
}

/// With events on disk (as the server runs): a checkpoint of an on-disk
/// workspace taken mid-script, then the rest of the script (contacts,
/// events, merges, rules, timers), then a start from it with the history
/// source: it equals the live workspace, holds only recent events, and
/// catches up with time like it.
#[test]
fn an_on_disk_start_from_a_checkpoint_equals_the_live_workspace() {
    let source = |dir: &std::path::Path| {
        sift_engine::HistorySource(std::sync::Arc::new(sift_store::EventStream::new(
            &dir.join("ws.db"),
        )))
    };
    let mut taken = false;
    let mut run = conformance_run::run_with(|step, _, db, dir| {
        if !taken && step >= 300 {
            taken = true;
            let disk = db.load_streaming(source(dir)).unwrap();
            assert!(disk.on_disk());
            let meta = checkpoint::CheckpointMeta {
                write_number: db.last_write(),
                clock: disk.clock(),
                taken_at: 0,
            };
            let ckpt = disk.checkpoint_copy().into_checkpoint();
            checkpoint::write(dir, "ws", meta, &ckpt, &|| {}).unwrap();
        }
    });
    assert!(taken, "the script is shorter than 300 steps");
    let (mut from_checkpoint, report) =
        checkpoint::load(&run.db, run.dir.path(), "ws", Some(source(run.dir.path()))).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert!(report.checkpoint.is_some(), "the checkpoint was not used");
    assert!(
        report.reloaded > 0,
        "no contact was touched after the checkpoint"
    );
    assert!(from_checkpoint.on_disk());
    assert_same(
        "an on-disk start from a checkpoint",
        &summary(&from_checkpoint),
        &summary(&run.ws),
    );
    assert_evaluated_afresh(&from_checkpoint);
    assert!(from_checkpoint.event_count() <= run.ws.event_count());
    let later = later(&run);
    let caught_up = from_checkpoint.advance(later).records;
    let live = run.ws.advance(later).records;
    assert_eq!(format!("{caught_up:?}"), format!("{live:?}"));
    assert_same(
        "after catching up on disk",
        &summary(&from_checkpoint),
        &summary(&run.ws),
    );
}

/// Every stored event of `types` as a count reads it:
/// only the properties in `names`, no JSON text, no idempotency key.
fn read_rows(
    stream: &sift_store::EventStream,
    types: &[String],
    names: &[String],
) -> Vec<(u64, sift_engine::EventRecord)> {
    let mut out = Vec::new();
    stream
        .stream_types(Some(types), &mut |seq, event| {
            let mut event = event.clone();
            event.properties.retain(|(name, value)| {
                names.contains(name)
                    && !matches!(
                        value,
                        sift_engine::RawValue::Null | sift_engine::RawValue::Unsupported(_)
                    )
            });
            event.properties.sort_by(|a, b| a.0.cmp(&b.0));
            event.properties_json.clear();
            event.id = None;
            out.push((seq, event));
        })
        .unwrap();
    out
}

/// The columnar copy of the events (`event_blocks.rs`, blocks of 8 here)
/// built every few steps reads exactly what the rows hold, through merges
/// moving events and deletions blanking them after their blocks were
/// built; and a new all-time count over it, on an on-disk workspace,
/// equals the live workspace's.
#[test]
fn the_columnar_copy_of_events_reads_what_the_rows_hold() {
    let mut built = 0;
    let run = conformance_run::run_with(|step, _, _, dir| {
        let path = dir.join("ws.db");
        if step == 0 {
            sift_store::set_event_block_size(&path, 8).unwrap();
        }
        if step % 20 == 0 {
            built += sift_store::build_event_blocks(&path, &mut |_, _| {})
                .unwrap()
                .blocks;
        }
    });
    let path = run.dir.path().join("ws.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let edited: i64 = conn
        .query_row("SELECT COUNT(*) FROM event_block_edits", [], |r| r.get(0))
        .unwrap();
    let stale: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM event_block_edits WHERE block NOT IN (SELECT block FROM event_blocks)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(built > 20, "only {built} blocks built");
    assert!(
        stale > 0,
        "no block was left stale by an edit ({edited} edited)"
    );

    let stream = sift_store::EventStream::new(&path);
    let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for (types, names) in [
        (strings(&["purchase"]), strings(&["amount"])),
        (
            strings(&["purchase", "page_visit"]),
            strings(&["amount", "tags", "note"]),
        ),
        (strings(&["page_visit"]), Vec::new()),
    ] {
        // Each call hands one type's events of one range: as records, in
        // seq order, they must be the rows'.
        let mut columnar = Vec::new();
        stream
            .stream_columns(&types, &names, &mut |columns| {
                for (i, &seq) in columns.seqs.iter().enumerate() {
                    let mut properties: Vec<(String, sift_engine::RawValue)> = columns
                        .props
                        .iter()
                        .filter_map(|(name, values)| Some((name.clone(), values.raw(i)?)))
                        .collect();
                    properties.sort_by(|a, b| a.0.cmp(&b.0));
                    let event = sift_engine::EventRecord {
                        no: columns.contacts[i],
                        id: None,
                        event_type: columns.event_type.to_string(),
                        at: columns.ats[i],
                        properties,
                        properties_json: String::new(),
                    };
                    columnar.push((seq, event));
                }
            })
            .unwrap();
        columnar.sort_by_key(|(seq, _)| *seq);
        let rows = read_rows(&stream, &types, &names);
        assert!(!rows.is_empty(), "no {types:?} event");
        assert_eq!(columnar, rows, "{types:?} reading {names:?}");
    }

    let mut disk = run
        .db
        .load_streaming(sift_engine::HistorySource(std::sync::Arc::new(
            sift_store::EventStream::new(&path),
        )))
        .unwrap();
    assert!(disk.on_disk());
    let at = run.last;
    for (i, condition) in [
        "performed purchase where amount > 50 at least 2 times",
        "total purchase.amount >= 100",
        "performed purchase where tags contains \"web\"",
        "performed purchase where amount between 10 and 60.5 at least 1 times",
    ]
    .into_iter()
    .enumerate()
    {
        let condition = sift_lang::parse_text(condition, &run.ws.schema()).unwrap();
        let expected = run.ws.preview(&condition, at).unwrap();
        assert!(!expected.is_empty(), "{condition:?} selects nobody");
        // A preview counts aside; a create counts into the workspace.
        assert_eq!(
            disk.preview(&condition, at).unwrap(),
            expected,
            "{condition:?}"
        );
        let id = format!("new{i}");
        disk.create_segment(
            sift_engine::SegmentInput {
                id: id.clone(),
                name: id.clone(),
                description: String::new(),
                kind: sift_engine::SegmentKind::Dynamic,
                condition: Some(condition.clone()),
                test: false,
            },
            at,
        )
        .unwrap();
        let members = &disk.segment(&id).unwrap().members;
        assert_eq!(*members.bitmap(), expected, "{condition:?} created");
    }
}
