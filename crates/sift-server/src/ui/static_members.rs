//! Static (and test) segments filled by hand: the "Add contacts" card of the
//! segment page (paste ids or emails, or upload a CSV; a preview of what
//! matches before Apply) and the members table with a checkbox per row and
//! "Remove from segment". `static_members.js` drives both through
//! `POST /v1/segments/{id}/contacts:match` and the add and remove routes.

use maud::{Markup, html};

use super::layout::{plural, url_part};

/// The most bytes of a CSV file the page sends (the server bounds rows too).
pub const MAX_FILE_BYTES: u64 = 5 * 1024 * 1024;

/// What a hand add or remove did, said on the page it comes back to.
pub fn notice(added: Option<u64>, removed: Option<u64>) -> Option<Markup> {
    let text = match (added, removed) {
        (Some(n), _) => format!("{} added.", plural(n, "contact", "contacts")),
        (None, Some(n)) => format!("{} removed.", plural(n, "contact", "contacts")),
        (None, None) => return None,
    };
    Some(html! { p #members-notice .notice role="status" { (text) } })
}

/// The "Add contacts" card of a static segment's page.
pub fn add_card(id: &str, name: &str) -> Markup {
    html! {
        section.card #add-contacts data-segment-id=(id) data-segment-name=(name) data-max-bytes=(MAX_FILE_BYTES) {
            h2 #add-heading { "Add contacts" }
            form #add-form .stack aria-labelledby="add-heading" novalidate {
                label for="add-values" { "Contact ids or emails" }
                textarea #add-values rows="5" spellcheck="false" autocomplete="off" aria-describedby="add-values-help" placeholder="ann@example.com\ncustomer-1042" {}
                small #add-values-help .muted { "One per line, or separated by commas. Emails match without case." }
                label for="add-file" { "Or a CSV file" }
                input #add-file type="file" accept=".csv,text/csv,text/plain" aria-describedby="add-file-help";
                small #add-file-help .muted { "One column of ids or emails; with a header row, choose the column. Up to 10,000 rows." }
                div #add-csv-options hidden {
                    label.check { input #add-header type="checkbox"; " First row is a header" }
                    label for="add-column" { "Column" }
                    select #add-column {}
                }
                div #add-error role="alert" {}
                div.actions {
                    button type="submit" #add-preview-button { "Preview" }
                }
            }
            div #add-preview role="status" aria-live="polite" hidden {
                p #add-summary {}
                div #add-unknown-wrap hidden {
                    p { "Not found (nothing is added for these):" }
                    ul #add-unknown .compact {}
                }
                div.actions {
                    button.primary type="button" #add-apply { "Apply" }
                    button type="button" #add-discard { "Discard" }
                }
            }
        }
    }
}

/// A static segment's members with a checkbox per row and a button to
/// remove the checked ones.
pub fn members_table(
    id: &str,
    name: &str,
    columns: &[String],
    fields: &[(String, String)],
    rows: &[(String, Vec<String>)],
) -> Markup {
    html! {
        form #members-form data-segment-id=(id) data-segment-name=(name) {
            div.toolbar {
                button.danger type="button" #remove-members disabled { "Remove from segment" }
                span.muted #selected-count aria-live="polite" { "None selected" }
                a href={ "/ui/segments/" (url_part(id)) "#add-contacts" } { "Add contacts" }
            }
            div #remove-error role="alert" {}
            div.table-wrap {
                table #contacts {
                    thead { tr {
                        th.select { input #select-all type="checkbox" aria-label="Select every contact on this page"; }
                        th { "Contact" }
                        @for c in columns {
                            th { (fields.iter().find(|(n, _)| n == c).map_or(c.as_str(), |(_, l)| l.as_str())) }
                        }
                    } }
                    tbody {
                        @for (contact, cells) in rows {
                            tr data-contact-id=(contact) {
                                td.select { input.member-box type="checkbox" value=(contact) aria-label={ "Select " (contact) }; }
                                td { a href={ "/ui/contacts/" (url_part(contact)) } { (contact) } }
                                @for value in cells { td { (value) } }
                            }
                        }
                    }
                }
                @if rows.is_empty() { p.muted { "No contacts here yet." } }
            }
        }
    }
}
