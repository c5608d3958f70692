#!/usr/bin/env bash
# The API test suite (crates/sift-server/tests/api) against a cluster
# (docs/cluster.md): 3 NATS servers and 3 Sift nodes on loopback started by
# scripts/cluster.sh in a folder of their own, each test's requests sent to the
# nodes in turn (SIFT_TEST_CLUSTER_NODES). The tests are the same as against one
# node; those that read or restart the server's insides are skipped, below,
# each with why. Needs what scripts/cluster.sh needs (it installs nats-server).
#
# Environment: SIFT_BIN (the sift binary; default target/debug/sift, built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

export SIFT_CLUSTER_DIR="${CARGO_TARGET_DIR:-target}/cluster-api-test"
export SIFT_CLUSTER_BASE_PORT=${SIFT_CLUSTER_BASE_PORT:-15222}
export SIFT_CLUSTER_HTTP_PORT=${SIFT_CLUSTER_HTTP_PORT:-7971}
export SIFT_ADMIN_KEY=admin-key-for-tests   # tests/api/common.rs ADMIN_KEY
export SIFT_ALLOW_PRIVATE_DESTINATIONS=true # as the tests' own servers: receivers on loopback
export SIFT_BIN=${SIFT_BIN:-${CARGO_TARGET_DIR:-target}/debug/sift}
if [ ! -x "$SIFT_BIN" ]; then
  cargo build -p sift >&2
fi

scripts/cluster.sh down >/dev/null 2>&1 || true
rm -rf "$SIFT_CLUSTER_DIR"
trap 'scripts/cluster.sh down >/dev/null 2>&1 || true' EXIT
scripts/cluster.sh up

skip=(
  # restart(): they stop and reopen the test's own in-process server.
  bounds::a_total_of_huge_values_stays_a_number_and_membership_follows_it
  changes::the_log_still_names_deleted_contacts_after_a_restart
  conditions::a_segment_ignoring_case_has_every_spelling_and_only_those
  conditions::an_event_filter_ignoring_case_survives_a_restart
  contact_score::a_score_survives_a_restart_with_its_sources
  contact_score::points_of_deleted_events_stay_as_one_item
  changes::the_stream_resumes_with_last_event_id_after_a_restart
  events::a_batch_posted_twice_applies_once_also_after_a_restart
  events::a_window_that_closes_while_the_server_is_down_exits_at_its_instant
  facebook_audiences::the_token_is_saved_once_checked_sealed_and_reused_by_exports
  facebook_jobs::facebook_jobs_are_readable_after_a_restart_and_a_sync_resumes
  facebook_resume::
  history::
  identify::identify_merges_events_properties_scores_and_static_memberships
  identify::later_writes_and_reads_addressed_to_the_anonymous_id_go_to_the_known_contact
  scoring::a_rule_is_created_listed_read_edited_and_deleted
  segment_history::revisions_survive_a_restart
  seqs::the_first_change_of_a_fresh_workspace_is_seq_1
  webhooks::a_restart_in_the_middle_of_a_window_cuts_the_same_batches
  webhooks::a_restart_resumes_from_the_last_acknowledged_seq_with_the_same_delivery_id
  workflow_webhooks::pending_deliveries_survive_a_restart_and_unsigned_ones_have_no_signature
  workflows::usages_list_workflows_and_a_segment_in_use_cannot_be_deleted
  workflows::vip_entries_fill_gifted_and_give_points_once_across_restarts
  workspaces_auth::revoked_keys_and_workspaces_survive_a_restart
  # A manual clock, or the process's own metrics recorder.
  events::a_window_closes_when_a_manual_clock_reaches_its_instant
  events::a_window_closes_on_time_with_cause_time
  contact_score::a_score_is_split_by_rule_and_workflow_and_adds_up
  scoring::points_expire_on_time
  segment_history::members_as_of_a_past_instant_and_sizes_over_time
  workflow_growth::
  # Settings of their own (destination policy, body limit, field limits, timeouts).
  destinations::a_literal_loopback_url_saved_earlier_is_refused_when_sending
  destinations::a_name_resolving_to_loopback_is_refused_at_delivery_time
  destinations::every_non_public_destination_is_refused_with_the_reason
  errors::a_body_over_the_configured_limit_is_413
  field_limits::a_workspace_holds_at_most_max_fields_custom_fields
  webhooks::a_down_endpoint_holds_up_neither_writes_nor_a_healthy_webhook
  # Sessions, login tokens or workspaces made straight in the server's state.
  ui::a_pasted_key_signs_in_until_the_key_is_revoked_or_the_user_signs_out
  ui::pages_show_the_workspace_data
  ui::the_api_takes_the_session_cookie_and_needs_the_ui_header_to_change_anything
  ui::the_export_job_stream_follows_the_job_without_its_token
  ui::the_live_size_stream_starts_with_every_size
  ui::the_printed_login_token_signs_in_and_leaves_the_address_bar
  webhooks::the_webhooks_page_lists_status_lag_and_errors
  changes::the_stream_carries_only_the_keys_workspace
  workspaces_auth::a_key_of_one_workspace_cannot_touch_another
  workspaces_auth::keys_of_an_unknown_workspace_are_404
  # Lists every workspace: the cluster holds every other test's too.
  workspaces_auth::admin_key_creates_a_workspace_whose_key_works
)
args=()
for name in "${skip[@]}"; do args+=(--skip "$name"); done

nodes=""
for i in 0 1 2; do nodes="$nodes${nodes:+,}http://127.0.0.1:$((SIFT_CLUSTER_HTTP_PORT + i))"; done
SIFT_TEST_CLUSTER_NODES="$nodes" cargo test -p sift-server --test api --locked -- "${args[@]}"
