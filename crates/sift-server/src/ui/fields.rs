//! The Fields page: every field with its type and label, and a form to
//! declare a new one (app.js sends it to `PUT /v1/fields/{name}`).

use maud::html;

use super::layout::Nav;
use super::{Signed, UiResult};

pub async fn list(Signed(ws): Signed) -> UiResult {
    let fields = ws.read(|engine| engine.fields().to_vec())?;
    let body = html! {
        div.page-head { h1 { "Fields" } }
        p.muted { "The properties contacts can have. Writing a contact with a new property creates its field; declare date and datetime fields here first." }
        div.table-wrap {
            table #fields {
                thead { tr { th { "Label" } th { "Name" } th { "Type" } th { "Kind" } } }
                tbody {
                    @for f in &fields {
                        tr data-field=(f.name) {
                            td { (if f.label.is_empty() { f.name.as_str() } else { f.label.as_str() }) }
                            td.mono { (f.name) }
                            td { (f.field_type.name().replace('_', " ")) }
                            td { (if f.system { "system (read-only)" } else if f.builtin { "built-in" } else { "custom" }) }
                        }
                    }
                }
            }
        }
        section.card {
            h2 #declare-heading { "Declare a field" }
            form #declare-field .stack aria-labelledby="declare-heading" novalidate {
                label for="field-name" { "Name" }
                input #field-name name="name" required pattern="[a-z][a-z0-9_]{0,63}" placeholder="e.g. signup_date" aria-describedby="field-name-help";
                small #field-name-help .muted { "Lower-case letters, digits and _, starting with a letter." }
                label for="field-type" { "Type" }
                select #field-type name="type" {
                    option value="string" { "Text (string)" }
                    option value="number" { "Number" }
                    option value="boolean" { "True/false (boolean)" }
                    option value="date" { "Date" }
                    option value="datetime" { "Date and time (datetime)" }
                    option value="string_list" { "List of texts (string_list)" }
                }
                label for="field-label" { "Label" }
                input #field-label name="label" placeholder="e.g. Signup date";
                div #field-error role="alert" {}
                button.primary type="submit" { "Declare field" }
            }
        }
    };
    Ok(super::layout::render(&ws, Nav::Fields, "Fields", body))
}
