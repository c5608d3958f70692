//! A segment's history page (`/ui/segments/{id}/history`): every revision,
//! newest first, each with who made it, what it moved and how it differs
//! from the one before (a word diff of the condition), and a button that
//! restores it (history.js: a `PATCH` with its tree, a new revision).

use maud::{Markup, html};
use serde::Deserialize;
use sift_store::RevisionRow;

use super::layout::{Nav, Page, count, segment_crumbs, time};
use super::{Signed, UiResult};
use crate::api::Path;
use crate::error::ApiError;

/// Revisions shown per page.
const PER_PAGE: usize = 50;

/// A condition's words, longer than this, are compared whole rather than
/// word by word (the diff is quadratic).
const MAX_DIFF_WORDS: usize = 600;

#[derive(Deserialize)]
pub struct HistoryQuery {
    cursor: Option<String>,
}

/// One piece of a word diff.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Same(&'a str),
    Removed(&'a str),
    Added(&'a str),
}

/// The words of `before` and `after` as kept, removed and added, by their
/// longest common subsequence.
pub fn word_diff<'a>(before: &'a str, after: &'a str) -> Vec<Piece<'a>> {
    let old: Vec<&str> = before.split_whitespace().collect();
    let new: Vec<&str> = after.split_whitespace().collect();
    if old.len() > MAX_DIFF_WORDS || new.len() > MAX_DIFF_WORDS {
        return vec![Piece::Removed(before), Piece::Added(after)];
    }
    // lcs[i][j]: the longest common subsequence of old[i..] and new[j..].
    let mut lcs = vec![vec![0u16; new.len() + 1]; old.len() + 1];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            lcs[i][j] = if old[i] == new[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = Vec::with_capacity(old.len().max(new.len()));
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            out.push(Piece::Same(old[i]));
            i += 1;
            j += 1;
        } else if i < old.len() && (j == new.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            // Removals first: "a ~~b~~ c" reads before what replaced it.
            out.push(Piece::Removed(old[i]));
            i += 1;
        } else {
            out.push(Piece::Added(new[j]));
            j += 1;
        }
    }
    out
}

fn diff_markup(before: &str, after: &str) -> Markup {
    html! {
        p.diff {
            @for piece in word_diff(before, after) {
                @match piece {
                    Piece::Same(w) => { span { (w) } " " },
                    Piece::Removed(w) => { del title="removed" { (w) } " " },
                    Piece::Added(w) => { ins title="added" { (w) } " " },
                }
            }
        }
    }
}

fn author(row: &RevisionRow) -> Markup {
    let via = match row.via.as_str() {
        "api" => "the API",
        "ui" => "the web UI",
        "system" => "Sift itself (demo or command line)",
        _ => "",
    };
    html! {
        @if row.via == "before history" {
            "saved before history was kept"
        } @else if row.via == "system" && row.key_id.is_none() {
            "made by Sift itself (the demo or the command line)"
        } @else {
            "by "
            @match &row.key_id {
                Some(key) => { "key " code { (key) } }
                None => "a sign-in link",
            }
            @if !via.is_empty() { " through " (via) }
        }
    }
}

/// What changed from `before` (None: the segment's creation).
fn changes(row: &RevisionRow, before: Option<&RevisionRow>) -> Markup {
    let condition = row.condition.as_deref().unwrap_or("");
    html! {
        @match before {
            None => {
                p { "Created." }
                @if !condition.is_empty() { p.diff { code { (condition) } } }
            }
            Some(before) => {
                @let old_condition = before.condition.as_deref().unwrap_or("");
                @if before.name != row.name {
                    p { "Renamed from “" (before.name) "” to “" (row.name) "”." }
                }
                @if before.description != row.description {
                    p { "Description changed to “" (row.description) "”." }
                }
                @if old_condition != condition {
                    p { "Condition changed:" }
                    (diff_markup(old_condition, condition))
                }
                @if before.name == row.name && before.description == row.description && old_condition == condition {
                    p.muted { "Saved without changes." }
                }
            }
        }
    }
}

pub async fn page(
    Signed(ws): Signed,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<HistoryQuery>,
) -> UiResult {
    let before = crate::api::parse_cursor(query.cursor.as_deref())?;
    let name =
        ws.read(|engine| super::segments::segment(engine, &id).map(|s| s.def.name.clone()))??;
    // One more than shown: the oldest shown is diffed against it.
    let rows = {
        let reader = ws.reader()?;
        reader
            .revisions(&id, before.map(u64::from), PER_PAGE + 1)
            .map_err(ApiError::internal)?
    };
    let latest = before
        .is_none()
        .then(|| rows.first().map(|r| r.revision))
        .flatten();
    let shown = rows.len().min(PER_PAGE);
    let next = (rows.len() > PER_PAGE)
        .then(|| {
            rows.get(PER_PAGE - 1)
                .map(|r| crate::api::cursor(r.revision as u32))
        })
        .flatten();
    let seg = super::layout::url_part(&id);
    let body = html! {
        (segment_crumbs(&id, &name))
        div.page-head { h1 { "History of " (name) } }
        p #restore-error .error role="alert" hidden {}
        @if rows.is_empty() { p.muted { "No revisions kept." } }
        ol #revisions .revisions data-segment-id=(id) {
            @for (i, row) in rows.iter().take(shown).enumerate() {
                li.revision data-revision=(row.revision)
                    data-name=(row.name) data-description=(row.description)
                    data-condition-tree=[row.condition_tree.as_deref()] {
                    div.revision-head {
                        h2 { "Revision " (row.revision) }
                        span.muted { (time(row.at)) " · " (author(row)) }
                    }
                    @if let (Some(entered), Some(exited)) = (row.entered, row.exited) {
                        p.moved { (count(entered)) " entered · " (count(exited)) " exited" }
                    }
                    (changes(row, rows.get(i + 1)))
                    @if Some(row.revision) != latest {
                        button.restore type="button" data-restore=(row.revision) { "Restore revision " (row.revision) }
                    } @else {
                        p.muted { "The current version." }
                    }
                }
            }
        }
        @if let Some(next) = &next {
            nav.pager aria-label="Pages" { a href={ "/ui/segments/" (seg) "/history?cursor=" (next) } rel="next" { "Older revisions" } }
        }
    };
    let page = Page {
        ws: &ws,
        nav: Nav::Segments,
        title: &format!("History of {name}"),
        css: &[],
        scripts: &["/ui/assets/history.js"],
        modules: &[],
    };
    Ok(axum::response::IntoResponse::into_response(
        page.render(body),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_diff_keeps_the_common_words_in_order() {
        let diff = word_diff(
            "tier = \"gold\" and age > 30",
            "tier = \"silver\" and age > 30 and vip = true",
        );
        let removed: Vec<&str> = diff
            .iter()
            .filter_map(|p| match p {
                Piece::Removed(w) => Some(*w),
                _ => None,
            })
            .collect();
        let added: Vec<&str> = diff
            .iter()
            .filter_map(|p| match p {
                Piece::Added(w) => Some(*w),
                _ => None,
            })
            .collect();
        assert_eq!(removed, ["\"gold\""]);
        assert_eq!(added, ["\"silver\"", "and", "vip", "=", "true"]);
        let same = diff.iter().filter(|p| matches!(p, Piece::Same(_))).count();
        assert_eq!(same, 6);
    }

    #[test]
    fn an_empty_side_is_all_added_or_all_removed() {
        assert_eq!(word_diff("", "a b"), [Piece::Added("a"), Piece::Added("b")]);
        assert_eq!(word_diff("a", ""), [Piece::Removed("a")]);
        assert!(word_diff("", "").is_empty());
    }
}
