//! The page shell (header, navigation, theme) and small formatting helpers
//! shared by every page.

use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::state::WorkspaceHandle;

/// The navigation entry a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Segments,
    Contacts,
    Fields,
    Webhooks,
    Workflows,
    Scoring,
}

fn head(title: &str, extra_css: &[&str]) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="referrer" content="no-referrer";
            // No favicon request (and no 404 in the console).
            link rel="icon" href="data:,";
            title { (title) " · Sift" }
            // Before the stylesheet, so a dark theme never flashes light.
            script src="/ui/assets/theme.js" {}
            link rel="stylesheet" href="/ui/assets/app.css";
            @for css in extra_css {
                link rel="stylesheet" href=(css);
            }
        }
    }
}

/// A page without navigation (sign-in).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, &[]))
            body { (body) }
        }
    }
}

pub struct Page<'a> {
    pub ws: &'a WorkspaceHandle,
    pub nav: Nav,
    pub title: &'a str,
    pub css: &'a [&'a str],
    pub scripts: &'a [&'a str],
    /// ES modules (they import their siblings); deferred like the scripts.
    pub modules: &'a [&'a str],
}

impl Page<'_> {
    pub fn render(&self, body: Markup) -> Markup {
        let link = |nav: Nav, href: &str, label: &str| {
            html! {
                a href=(href) aria-current=[(self.nav == nav).then_some("page")] { (label) }
            }
        };
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(self.title, self.css))
                body {
                    a.skip href="#main" { "Skip to content" }
                    header.top {
                        a.brand href="/ui/segments" { span.logo aria-hidden="true" { "◆" } " Sift" }
                        span.workspace title="Workspace" { (self.ws.name) }
                        // Shown on narrow screens only, where the navigation folds away.
                        button.ghost type="button" #nav-toggle aria-controls="main-nav" aria-expanded="false" { "Menu" }
                        nav #main-nav aria-label="Main" {
                            div.group {
                                span.group-label { "Contacts" }
                                (link(Nav::Segments, "/ui/segments", "Segments"))
                                (link(Nav::Contacts, "/ui/contacts", "All contacts"))
                                (link(Nav::Fields, "/ui/fields", "Fields"))
                            }
                            div.group {
                                span.group-label { "Automation" }
                                (link(Nav::Workflows, "/ui/workflows", "Workflows"))
                                (link(Nav::Webhooks, "/ui/webhooks", "Webhooks"))
                                (link(Nav::Scoring, "/ui/scoring", "Scoring"))
                            }
                        }
                        div.tools {
                            button.ghost type="button" #theme-toggle aria-label="Toggle dark mode" title="Toggle dark mode" { "◐" }
                            form method="post" action="/ui/logout" {
                                button.ghost type="submit" { "Sign out" }
                            }
                        }
                    }
                    main #main tabindex="-1" { (body) }
                    script src="/ui/assets/app.js" defer {}
                    @for script in self.scripts {
                        script src=(script) defer {}
                    }
                    @for module in self.modules {
                        script type="module" src=(module) {}
                    }
                }
            }
        }
    }
}

/// A page with no styles or scripts beyond the shell's.
pub fn render(ws: &WorkspaceHandle, nav: Nav, title: &str, body: Markup) -> Response {
    let page = Page {
        ws,
        nav,
        title,
        css: &[],
        scripts: &[],
        modules: &[],
    };
    page.render(body).into_response()
}

/// "Segments / NAME /" above a page about one segment.
pub fn segment_crumbs(id: &str, name: &str) -> Markup {
    html! {
        nav.crumbs aria-label="Breadcrumb" {
            a href="/ui/segments" { "Segments" } " / "
            a href={ "/ui/segments/" (url_part(id)) } { (name) } " / "
        }
    }
}

/// Every field as (name, what people call it).
pub fn field_labels(engine: &sift_engine::Workspace) -> Vec<(String, String)> {
    engine
        .fields()
        .iter()
        .map(|f| {
            let label = if f.label.is_empty() {
                &f.name
            } else {
                &f.label
            };
            (f.name.clone(), label.clone())
        })
        .collect()
}

/// A UTC instant as a `<time>` element; app.js shows it relative and local.
pub fn time(ms: i64) -> Markup {
    let iso = sift_engine::format_datetime(ms);
    let shown = iso.get(..16).unwrap_or(&iso).replace('T', " ");
    html! { time datetime=(iso) title=(iso) { (shown) " UTC" } }
}

/// `1234567` → `1,234,567`, for counts shown in sentences.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1` → "1 contact", `2` → "2 contacts".
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// JSON for a `data-` attribute (maud escapes the quotes).
pub fn data_json(value: &serde_json::Value) -> String {
    value.to_string()
}

/// A segment's kind as people call it.
pub fn kind_label(kind: sift_engine::SegmentKind, test: bool) -> &'static str {
    match (kind, test) {
        (sift_engine::SegmentKind::Dynamic, _) => "Dynamic",
        (sift_engine::SegmentKind::Static, true) => "Test",
        (sift_engine::SegmentKind::Static, false) => "Static",
    }
}

pub fn url_part(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
