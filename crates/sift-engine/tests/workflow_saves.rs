//! What a workflow save refuses, and usages: workflows by role, every
//! status counting, and the refused segment delete.

mod workflow_bench;

use sift_engine::{Action, Error, RawValue, Trigger, WorkflowInput, WorkflowStatus, Workspace};
use sift_lang::parse_text;
use workflow_bench::{Bench, gift, vip_bench, workflow};

#[test]
fn saves_refuse_what_cannot_run() {
    let mut bench = vip_bench();
    bench.segment("testers", None, true);
    bench.segment("plain", None, false);
    let refuse = |bench: &mut Bench, input: WorkflowInput, path: &str| match bench.workflow(input) {
        Err(Error::InvalidWorkflow { path: got, message }) => {
            assert_eq!(got, path, "{message}");
            message
        }
        other => panic!("expected a refusal at {path}, got {other:?}"),
    };
    // Directly setting itself off.
    let message = refuse(
        &mut bench,
        workflow(
            "loop",
            Trigger::SegmentEntered("gifted".into()),
            vec![Action::AddToSegment("gifted".into())],
        ),
        "actions[0]",
    );
    assert!(
        message.contains("would set off this workflow again"),
        "{message}"
    );
    refuse(
        &mut bench,
        workflow(
            "loop",
            Trigger::SegmentExited("gifted".into()),
            vec![Action::RemoveFromSegment("gifted".into())],
        ),
        "actions[0]",
    );
    // Action targets are static segments.
    refuse(
        &mut bench,
        workflow(
            "w",
            Trigger::SegmentEntered("gifted".into()),
            vec![Action::AddToSegment("vip".into())],
        ),
        "actions[0].segment",
    );
    refuse(
        &mut bench,
        workflow("w", Trigger::SegmentEntered("nope".into()), gift()),
        "trigger.segment",
    );
    // Values fit their field.
    let message = refuse(
        &mut bench,
        workflow(
            "w",
            Trigger::SegmentEntered("vip".into()),
            vec![Action::SetProperty {
                field: "orders".into(),
                value: RawValue::String("many".into()),
            }],
        ),
        "actions[0].value",
    );
    assert!(message.contains("expects a number"), "{message}");
    refuse(
        &mut bench,
        workflow(
            "w",
            Trigger::SegmentEntered("vip".into()),
            vec![Action::SetProperty {
                field: "lead_score".into(),
                value: RawValue::Number(1.0),
            }],
        ),
        "actions[0].field",
    );
    // Test mode needs a test segment, and a test segment is one.
    let mut test = workflow("w", Trigger::SegmentEntered("vip".into()), gift());
    test.status = WorkflowStatus::Test;
    refuse(&mut bench, test.clone(), "test_segment");
    test.test_segment = Some("plain".into());
    refuse(&mut bench, test.clone(), "test_segment");
    test.test_segment = Some("testers".into());
    bench.workflow(test).unwrap();
    // Names are unique without case.
    let mut twin = workflow("w2", Trigger::SegmentEntered("vip".into()), gift());
    twin.name = "W".into();
    assert!(matches!(
        bench.workflow(twin),
        Err(Error::WorkflowNameTaken(_))
    ));
    // A field a workflow sets keeps its type.
    bench
        .workflow(workflow(
            "tagger",
            Trigger::SegmentEntered("vip".into()),
            vec![Action::SetProperty {
                field: "tier".into(),
                value: RawValue::String("gold".into()),
            }],
        ))
        .unwrap();
    assert_eq!(
        bench.ws.field("tier").map(|f| f.field_type),
        Some(sift_lang::FieldType::String)
    );
    assert!(matches!(
        bench
            .ws
            .declare_field("tier", sift_lang::FieldType::Number, None),
        Err(Error::FieldTypeConflict { .. })
    ));
}

#[test]
fn usages_list_workflows_by_role_and_refuse_the_delete() {
    let mut bench = vip_bench();
    bench.segment("testers", None, true);
    let mut input = workflow(
        "check",
        Trigger::SegmentExited("gifted".into()),
        vec![Action::RemoveFromSegment("testers".into())],
    );
    input.filter = Some(parse_text("in segment \"vip\"", &bench.ws.schema()).unwrap());
    input.status = WorkflowStatus::Paused;
    input.test_segment = Some("testers".into());
    bench.workflow(input).unwrap();
    let roles = |ws: &Workspace, id: &str| -> Vec<(String, &'static str, Option<&'static str>)> {
        ws.usages(id)
            .unwrap()
            .into_iter()
            .map(|u| (u.id, u.role.as_str(), u.status.map(WorkflowStatus::as_str)))
            .collect()
    };
    assert_eq!(
        roles(&bench.ws, "vip"),
        vec![
            ("gift".to_string(), "trigger", Some("active")),
            ("check".to_string(), "filter", Some("paused")),
        ]
    );
    assert_eq!(
        roles(&bench.ws, "gifted"),
        vec![
            ("gift".to_string(), "action_target", Some("active")),
            ("check".to_string(), "trigger", Some("paused")),
        ]
    );
    assert_eq!(
        roles(&bench.ws, "testers"),
        vec![
            ("check".to_string(), "action_target", Some("paused")),
            ("check".to_string(), "test_segment", Some("paused")),
        ]
    );
    assert!(matches!(
        bench.ws.delete_segment("testers"),
        Err(Error::InUse { .. })
    ));
    let now = bench.tick();
    bench.ws.delete_workflow("check", now).unwrap();
    assert!(roles(&bench.ws, "testers").is_empty());
    bench.ws.delete_segment("testers").unwrap();
}
