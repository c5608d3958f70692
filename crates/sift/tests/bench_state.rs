//! `sift bench --suite state` end to end at a tiny size: it loads a data
//! directory through the import path, restarts a real `sift serve` on it and
//! writes every figure to `--json`, with membership equal across restarts.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

fn number(figures: &Json, pointer: &str) -> f64 {
    figures
        .pointer(pointer)
        .and_then(Json::as_f64)
        .unwrap_or_else(|| panic!("no number at {pointer} in {figures:#}"))
}

#[test]
fn the_state_suite_writes_every_figure_with_membership_exact() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("state.json");
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_sift"))
        .args([
            "bench",
            "--suite",
            "state",
            "--contacts",
            "2000",
            "--events",
            "20000",
        ])
        .arg("--json")
        .arg(&json)
        .env_remove("SIFT_ADMIN_KEY")
        .env("SIFT_LOG", "warn")
        .env("TMPDIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    for line in ["restart:", "per contact:", "per event:", "new segment:"] {
        assert!(stdout.contains(line), "{line} missing from\n{stdout}");
    }
    assert!(stdout.contains("checkpoint:"), "{stdout}");

    let figures: Json = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(figures["contacts"], 2000);
    assert_eq!(figures["events"], 20000);
    assert_eq!(figures["segments"], 30, "{figures:#}");
    assert_eq!(figures["membership_exact"], true, "{figures:#}");
    assert_eq!(figures["mismatches"], serde_json::json!([]));
    let runs = figures["restart_s"]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    let (min, median) = (
        number(&figures, "/restart_s/min"),
        number(&figures, "/restart_s/median"),
    );
    assert!(min > 0.0 && min <= median, "{figures:#}");
    for pointer in [
        "/rss_bytes/empty",
        "/rss_bytes/contacts_only",
        "/rss_bytes/loaded",
    ] {
        assert!(
            number(&figures, pointer) > 1_000_000.0,
            "{pointer}: {figures:#}"
        );
    }
    assert!(number(&figures, "/rss_bytes/loaded") >= number(&figures, "/rss_bytes/empty"));
    for pointer in [
        "/rss_bytes_at_first_answer/empty",
        "/rss_bytes_at_first_answer/contacts_only",
        "/rss_bytes_at_first_answer/loaded",
        "/bytes_per_contact",
        "/bytes_per_event",
        "/bytes_per_contact_at_first_answer",
        "/bytes_per_event_at_first_answer",
    ] {
        number(&figures, pointer);
    }
    assert!(
        figures["derivation"]
            .as_str()
            .unwrap()
            .contains("empty server")
    );
    number(&figures, "/new_segment/took_ms");
    assert!(number(&figures, "/new_segment/wall_ms") >= number(&figures, "/new_segment/took_ms"));
    assert!(number(&figures, "/new_segment/size") > 0.0, "{figures:#}");
    // Every restart loads the checkpoint its predecessor wrote at SIGTERM;
    // the full rebuild is timed with the checkpoints set aside.
    assert_eq!(
        figures["checkpoint"]["restarts_from_checkpoint"], 3,
        "{figures:#}"
    );
    assert!(number(&figures, "/checkpoint/full_rebuild_s") > 0.0);
    assert!(number(&figures, "/checkpoint/shutdown/bytes") > 0.0);
    number(&figures, "/checkpoint/shutdown/write_ms");
    assert!(
        !figures["checkpoint"]["periodic"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{figures:#}"
    );
    number(&figures, "/checkpoint/longest_stall_ms");
    number(&figures, "/checkpoint/slowest_write_during_ms");
    number(&figures, "/load_s/contacts");
    number(&figures, "/load_s/events");
    number(&figures, "/machine/cpus");
    assert!(figures["machine"]["load_average_before"].is_string());
}
