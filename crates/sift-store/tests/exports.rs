//! Facebook export storage (schema versions 6 and 7): a job's state, a
//! sync's sealed token and the rows its audience holds, written through
//! group commits and read back after a reopen; a removal deletes a row; a
//! forgotten sync leaves nothing behind, and other jobs keep theirs.

use sift_store::{ConnectionRow, ExportRow, ExportWrite, Pending, WorkspaceDb, WorkspaceReader};

fn exports(db: &mut WorkspaceDb, writes: Vec<ExportWrite>) {
    db.commit_all([Pending::Exports(&writes)]).unwrap();
}

fn sent(job: &str, rows: &[(u32, Option<&str>)]) -> ExportWrite {
    ExportWrite::Sent {
        job_id: job.to_string(),
        rows: rows
            .iter()
            .map(|(no, row)| (*no, row.map(str::to_string)))
            .collect(),
    }
}

#[test]
fn sync_tokens_and_sent_rows_are_stored_updated_and_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ws.db");
    let mut db = WorkspaceDb::open(&path).unwrap();
    let job = ExportRow {
        id: "fbx_1".into(),
        segment_id: "seg_1".into(),
        created_at: 5,
        job: r#"{"state":"running","sync":true}"#.into(),
    };
    exports(
        &mut db,
        vec![
            ExportWrite::Job(job.clone()),
            ExportWrite::Token {
                job_id: "fbx_1".into(),
                sealed: vec![1, 2, 3],
            },
            sent("fbx_1", &[(0, Some(r#"["a"]"#)), (1, Some(r#"["b"]"#))]),
            sent("fbx_2", &[(0, Some(r#"["x"]"#))]),
        ],
    );
    // A changed row replaces the old one; a removal deletes it.
    exports(
        &mut db,
        vec![sent(
            "fbx_1",
            &[(0, Some(r#"["a2"]"#)), (1, None), (7, Some(r#"["c"]"#))],
        )],
    );
    drop(db);
    let mut db = WorkspaceDb::open(&path).unwrap();
    let reader = WorkspaceReader::open(&path).unwrap();
    assert_eq!(reader.exports().unwrap(), vec![job]);
    assert_eq!(reader.export_token("fbx_1").unwrap(), Some(vec![1, 2, 3]));
    let mut rows = reader.export_sent("fbx_1").unwrap();
    rows.sort();
    assert_eq!(
        rows,
        vec![(0, r#"["a2"]"#.to_string()), (7, r#"["c"]"#.to_string())]
    );

    exports(
        &mut db,
        vec![ExportWrite::Forget {
            job_id: "fbx_1".into(),
        }],
    );
    assert_eq!(reader.export_token("fbx_1").unwrap(), None);
    assert_eq!(reader.export_sent("fbx_1").unwrap(), vec![]);
    assert_eq!(
        reader.export_sent("fbx_2").unwrap(),
        vec![(0, r#"["x"]"#.to_string())]
    );
    assert_eq!(reader.exports().unwrap().len(), 1, "the job's state stays");
}

#[test]
fn the_facebook_connection_is_set_replaced_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ws.db");
    let mut db = WorkspaceDb::open(&path).unwrap();
    let reader = WorkspaceReader::open(&path).unwrap();
    assert_eq!(reader.facebook_connection().unwrap(), None);
    let first = ConnectionRow {
        ad_account_id: "111".into(),
        graph_url: None,
        version: None,
        token_hint: "abcd".into(),
        sealed: vec![9, 8, 7],
        updated_at: 10,
    };
    let second = ConnectionRow {
        ad_account_id: "222".into(),
        graph_url: Some("https://graph.example.com".into()),
        version: Some("v20.0".into()),
        token_hint: "wxyz".into(),
        sealed: vec![1],
        updated_at: 20,
    };
    exports(&mut db, vec![ExportWrite::Connection(Some(first.clone()))]);
    assert_eq!(reader.facebook_connection().unwrap(), Some(first));
    exports(&mut db, vec![ExportWrite::Connection(Some(second.clone()))]);
    drop(db);
    let mut db = WorkspaceDb::open(&path).unwrap();
    assert_eq!(
        reader.facebook_connection().unwrap(),
        Some(second),
        "one connection per workspace: the second replaced the first"
    );
    exports(&mut db, vec![ExportWrite::Connection(None)]);
    assert_eq!(reader.facebook_connection().unwrap(), None);
}
