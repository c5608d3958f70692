//! The `sift` command's own verbs, run as a user would: `check` prints a
//! canonical condition or a pointed error with exit code 1, and `import
//! contacts` and `import events` stream CSV and JSON Lines into a stopped
//! server's data directory, skipping bad rows and naming them by line number;
//! `serve` prints a web UI sign-in link at every start.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sift() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sift"));
    command.env_remove("SIFT_ADMIN_KEY").env("SIFT_LOG", "warn");
    command
}

#[test]
fn check_prints_the_canonical_text_and_the_tree() {
    let out = sift().args(["check", "NEWSLETTER_X = 1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = sift()
        .args([
            "check",
            "newsletter = true AND interests CONTAINS \"shoes\"",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines = stdout.splitn(2, '\n');
    assert_eq!(
        lines.next().unwrap(),
        "newsletter = true and interests contains \"shoes\""
    );
    let tree: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(
        tree,
        serde_json::json!({"all": [
            {"field": "newsletter", "op": "eq", "value": true},
            {"field": "interests", "op": "contains", "value": "shoes"}
        ]})
    );
}

#[test]
fn check_points_at_the_fault() {
    let out = sift()
        .args(["check", "newsletter = true\nand birth_date >= 1965-13-01"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("at 2:19"), "{stderr}");
    assert!(stderr.contains("                  ^"), "{stderr}");
    let out = sift()
        .args([
            "check",
            "orders between 2 and 5",
            "--field",
            "orders:number",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// Starts `sift serve` once so the data directory has its first workspace,
/// then stops it.
fn first_start(data: &std::path::Path) {
    let mut child = sift()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    for line in BufReader::new(stdout).lines() {
        if line.unwrap().starts_with("Workspace key") || Instant::now() > deadline {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn import_reports_bad_rows_by_line_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    first_start(&data);

    let csv = dir.path().join("contacts.csv");
    std::fs::write(
        &csv,
        "id,email,newsletter,orders,interests,birth_date\n\
         a1,a1@x.com,true,3,shoes|bags,1990-01-01\n\
         a2,a2@x.com,false,x,,\n\
         \"a3\",\"a3@x.com, with a comma\",true,5,hats,1965-13-01\n\
         a4,\"a4@x.com\",true,7,,\n",
    )
    .unwrap();
    let out = sift()
        .args(["import", "contacts"])
        .arg(&csv)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("imported 2 contacts"), "{stdout}");
    assert!(
        stderr.contains("line 3: field \"orders\" expects a number"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 4: field \"birth_date\" expects a date"),
        "{stderr}"
    );

    let jsonl = dir.path().join("contacts.jsonl");
    std::fs::write(
        &jsonl,
        "{\"id\": \"j1\", \"properties\": {\"email\": \"j1@x.com\", \"interests\": [\"shoes\"]}}\n\
         not json\n\
         \n\
         {\"id\": \"j2\", \"properties\": {\"newsletter\": \"yes\"}}\n\
         {\"properties\": {}}\n\
         {\"id\": \"a1\", \"properties\": {\"orders\": 4}}\n",
    )
    .unwrap();
    let out = sift()
        .args(["import", "contacts"])
        .arg(&jsonl)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("imported 2 contacts"), "{stdout}");
    assert!(stderr.contains("line 2: not valid JSON"), "{stderr}");
    assert!(
        stderr.contains("line 4: field \"newsletter\" expects a boolean"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 5: each line needs an \"id\""),
        "{stderr}"
    );

    // What was imported is what the engine rebuilds on the next start.
    let state = sift_server::AppState::open(sift_server::Config::new(&data, None)).unwrap();
    let (id, _) = state.workspace_rows().remove(0);
    let handle = state.workspace(&id).unwrap();
    let (ids, orders) = handle
        .read(|ws| {
            let mut ids: Vec<String> = ws
                .contacts()
                .alive()
                .iter()
                .map(|no| ws.contacts().id(no).to_string())
                .collect();
            ids.sort();
            let a1 = ws.lookup("a1").and_then(|no| ws.contact(no)).unwrap();
            let orders = a1
                .properties
                .iter()
                .find(|(k, _)| k == "orders")
                .map(|(_, v)| v.clone());
            (ids, orders)
        })
        .unwrap();
    assert_eq!(ids, ["a1", "a4", "j1"]);
    assert_eq!(orders, Some(sift_engine::Value::Number(4.0)));
    state.close();
}

fn import(
    what: &str,
    file: &std::path::Path,
    data: &std::path::Path,
) -> (Option<i32>, String, String) {
    let out = sift()
        .args(["import", what])
        .arg(file)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn import_events_from_json_lines_and_csv_applies_each_id_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    first_start(&data);

    let jsonl = dir.path().join("events.jsonl");
    std::fs::write(
        &jsonl,
        "{\"id\": \"e1\", \"contact_id\": \"u1\", \"type\": \"purchase\", \"at\": \"2026-01-31T09:30:00Z\", \"properties\": {\"amount\": 60, \"cart\": {\"items\": [{\"sku\": \"A\"}]}}}\n\
         {\"id\": \"e2\", \"contact_id\": \"u1\", \"type\": \"purchase\", \"at\": \"yesterday\"}\n\
         \n\
         {\"id\": \"e3\", \"contact_id\": \"anon-7\", \"type\": \"page_visit\", \"anonymous\": true}\n\
         {\"id\": \"e4\", \"contact_id\": \"u2\", \"type\": \"email_open\", \"at\": \"2026-02-01T10:00:00+01:00\"}\n",
    )
    .unwrap();
    let (code, stdout, stderr) = import("events", &jsonl, &data);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("imported 3 events (0 duplicates)"),
        "{stdout}"
    );
    assert!(stdout.contains("events/s"), "{stdout}");
    assert!(
        stderr.contains("line 2: \"at\" must be an RFC 3339 datetime"),
        "{stderr}"
    );

    // The same file again: every id was accepted already.
    let (code, stdout, stderr) = import("events", &jsonl, &data);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("imported 0 events (3 duplicates)"),
        "{stdout}"
    );

    let csv = dir.path().join("events.csv");
    std::fs::write(
        &csv,
        "contact_id,type,id,at,amount,category,gift\n\
         u1,purchase,c1,2026-01-30T08:00:00Z,45.5,shoes,false\n\
         u3,product_view,c2,,,\"bags, large\",\n\
         u3,purchase,c3,2999-01-01T00:00:00Z,10,hats,\n\
         u1,purchase,e1,2026-01-31T09:30:00Z,60,,\n",
    )
    .unwrap();
    let (code, stdout, stderr) = import("events", &csv, &data);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("imported 2 events (1 duplicates)"),
        "{stdout}"
    );
    // An event stamped far in the future is the engine's to refuse.
    assert!(stderr.contains("line 4: "), "{stderr}");
    assert!(
        !stderr.contains("line 2:") && !stderr.contains("line 3:"),
        "{stderr}"
    );

    // Events created their contacts, which the next start restores.
    let state = sift_server::AppState::open(sift_server::Config::new(&data, None)).unwrap();
    let (id, _) = state.workspace_rows().remove(0);
    let handle = state.workspace(&id).unwrap();
    let (ids, anonymous) = handle
        .read(|ws| {
            let mut ids: Vec<String> = ws
                .contacts()
                .alive()
                .iter()
                .map(|no| ws.contacts().id(no).to_string())
                .collect();
            ids.sort();
            let anon = ws.lookup("anon-7").and_then(|no| ws.contact(no));
            (ids, anon.map(|c| c.anonymous))
        })
        .unwrap();
    assert_eq!(ids, ["anon-7", "u1", "u2", "u3"]);
    assert_eq!(anonymous, Some(true));
    state.close();
}

#[test]
fn import_refuses_a_directory_a_server_is_using() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = sift()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        if line.unwrap().starts_with("Workspace key") {
            break;
        }
    }
    let file = dir.path().join("c.jsonl");
    std::fs::write(&file, "{\"id\": \"x\"}\n").unwrap();
    let out = sift()
        .args(["import", "contacts"])
        .arg(&file)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another sift process is using"),
        "{out:?}"
    );
}

/// Starts `sift serve` on `data` and reads its output up to the sign-in link;
/// answers the child and the link.
fn serve_until_link(data: &std::path::Path) -> (std::process::Child, String) {
    let mut child = sift()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("Web UI: ") {
            // Keep reading: a closed pipe would fail the server's next line.
            std::thread::spawn(move || lines.for_each(drop));
            return (child, url.to_string());
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    panic!("sift serve printed no Web UI line");
}

/// A raw HTTP/1.1 GET; answers the response head.
fn http_head(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.split("\r\n\r\n").next().unwrap().to_string()
}

#[test]
fn serve_prints_a_sign_in_link_at_every_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut links = Vec::new();
    for _ in 0..2 {
        let (mut child, url) = serve_until_link(&data);
        assert!(url.contains("/ui/login?token=lt_"), "{url}");
        let head = http_head(&url);
        assert!(head.starts_with("HTTP/1.1 303"), "{head}");
        assert!(head.contains("location: /ui/segments"), "{head}");
        assert!(head.contains("set-cookie: sift_session=ss_"), "{head}");
        assert!(head.contains("HttpOnly"), "{head}");
        child.kill().unwrap();
        child.wait().unwrap();
        links.push(url);
    }
    // Tokens live in memory: a restart prints a new one.
    assert_ne!(links[0], links[1]);
}

#[test]
fn logs_written_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = sift()
        .env("SIFT_LOG", "info")
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut logged = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        logged.push_str(&line);
        logged.push('\n');
        if line.contains("workspace") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(logged.contains("INFO"), "no log line arrived: {logged}");
    assert!(
        !logged.contains('\u{1b}'),
        "colour codes in a piped log: {logged:?}"
    );
}

/// Starts `sift ARGS` in `dir`, reads its banner up to the line starting
/// with `last`, stops it; answers whether it printed a workspace key.
fn banner_prints_a_key(dir: &std::path::Path, args: &[&str], last: &str) -> bool {
    let mut child = sift()
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut printed_key = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        printed_key |= line.starts_with("Workspace key");
        if line.starts_with(last) {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    printed_key
}

#[test]
fn the_demo_keeps_its_own_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let demo = ["demo", "--contacts", "50", "--listen", "127.0.0.1:0"];
    assert!(
        banner_prints_a_key(dir.path(), &demo, "Web UI"),
        "the demo's first start prints its key"
    );
    assert!(dir.path().join("sift-demo-data").is_dir());
    // A later `sift serve` in the same folder starts a shop of its own,
    // with its own key, instead of reopening the demo without one.
    let serve = ["serve", "--listen", "127.0.0.1:0"];
    assert!(
        banner_prints_a_key(dir.path(), &serve, "API:"),
        "serve beside a demo starts its own shop and prints its key"
    );
    assert!(dir.path().join("sift-data").is_dir());
}

/// The workflow growth settings are `serve` flags with environment
/// variables, listed by `--help`; a bad value stops the start with a
/// message saying what to give.
#[test]
fn serve_takes_the_workflow_retention_and_queue_bound() {
    let out = sift().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for text in [
        "--workflow-retention",
        "SIFT_WORKFLOW_RETENTION",
        "[default: 30d]",
        "--workflow-queue-max",
        "SIFT_WORKFLOW_QUEUE_MAX",
        "[default: 100000]",
    ] {
        assert!(help.contains(text), "{text} missing from:\n{help}");
    }
    let dir = tempfile::tempdir().unwrap();
    for (flag, value, says) in [
        (
            "--workflow-retention",
            "30 days",
            "a whole number and a unit",
        ),
        ("--workflow-retention", "0d", "above 0"),
        ("--workflow-queue-max", "0", "0 is not in 1.."),
    ] {
        let out = sift()
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path())
            .args([flag, value])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{stderr}");
    }
    let out = sift()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .env("SIFT_WORKFLOW_RETENTION", "never")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// The event retention is a `serve` flag with an environment variable,
/// listed by `--help`; a retention of 0 days or a word stops the start.
#[test]
fn serve_takes_the_event_retention() {
    let out = sift().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for text in ["--event-retention <DAYS>", "SIFT_EVENT_RETENTION"] {
        assert!(help.contains(text), "{text} missing from:\n{help}");
    }
    let dir = tempfile::tempdir().unwrap();
    for value in ["0", "forever"] {
        let out = sift()
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path())
            .env("SIFT_EVENT_RETENTION", value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--event-retention"), "{stderr}");
    }
}

#[test]
fn import_is_held_to_the_field_limit_of_the_workspace_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    first_start(&data);

    // 150 new columns in one file: more than one API write may create, but an
    // import is held only to the workspace's total.
    let columns: Vec<String> = (0..150).map(|i| format!("p{i:03}")).collect();
    let values: Vec<String> = (0..150).map(|i| i.to_string()).collect();
    let wide = dir.path().join("wide.csv");
    std::fs::write(
        &wide,
        format!(
            "id,{}\nw1,{}\nw2,{}\n",
            columns.join(","),
            values.join(","),
            values.join(",")
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = import("contacts", &wide, &data);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("imported 2 contacts"), "{stdout}");

    // Past the total: the import stops and says which limit and how to raise it.
    let more = dir.path().join("more.csv");
    std::fs::write(&more, "id,extra_a,extra_b\nm1,1,2\n").unwrap();
    let out = sift()
        .args(["import", "contacts"])
        .arg(&more)
        .arg("--data")
        .arg(&data)
        .args(["--max-fields", "151"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("\"extra_b\""), "{stderr}");
    assert!(stderr.contains("limit of 151"), "{stderr}");
    assert!(
        stderr.contains("--max-fields (SIFT_MAX_FIELDS)"),
        "{stderr}"
    );

    // Dates outside the one range are refused by name, row by row.
    let dates = dir.path().join("dates.csv");
    std::fs::write(&dates, "id,birth_date\nd1,0000-12-31\nd2,9999-12-31\n").unwrap();
    let (code, stdout, stderr) = import("contacts", &dates, &data);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("imported 1 contacts"), "{stdout}");
    assert!(
        stderr.contains(
            "line 2: field \"birth_date\" takes dates and datetimes from 0001-01-01 to 9999-12-31"
        ),
        "{stderr}"
    );
}
