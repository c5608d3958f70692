//! What `sift bench --suite state --keep DIR` keeps beside a loaded
//! directory for a later run: the load's own figures (`loaded.json`) and
//! the 30 segments it created (`segments.json`).

use std::path::Path;

use serde_json::{Value as Json, json};

/// What loading the generated data into a fresh directory measured, kept
/// beside it (`loaded.json`) when the directory is kept for another run.
pub(crate) struct Loaded {
    pub(crate) contacts: u64,
    pub(crate) events: u64,
    pub(crate) key: String,
    pub(crate) contacts_s: f64,
    pub(crate) events_s: f64,
    pub(crate) rss_empty: (u64, u64),
    pub(crate) rss_contacts: (u64, u64),
}

impl Loaded {
    const FILE: &str = "loaded.json";

    /// A finished load of this size in `dir`, if there is one.
    pub(crate) fn read(dir: &Path, contacts: u64, events: u64) -> Option<Loaded> {
        let text = std::fs::read_to_string(dir.join(Loaded::FILE)).ok()?;
        let json: Json = serde_json::from_str(&text).ok()?;
        let pair = |key: &str| Some((json[key][0].as_u64()?, json[key][1].as_u64()?));
        let loaded = Loaded {
            contacts: json["contacts"].as_u64()?,
            events: json["events"].as_u64()?,
            key: json["key"].as_str()?.to_string(),
            contacts_s: json["contacts_s"].as_f64()?,
            events_s: json["events_s"].as_f64()?,
            rss_empty: pair("rss_empty")?,
            rss_contacts: pair("rss_contacts")?,
        };
        (loaded.contacts == contacts && loaded.events == events).then_some(loaded)
    }

    pub(crate) fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let json = json!({
            "contacts": self.contacts,
            "events": self.events,
            "key": self.key,
            "contacts_s": self.contacts_s,
            "events_s": self.events_s,
            "rss_empty": [self.rss_empty.0, self.rss_empty.1],
            "rss_contacts": [self.rss_contacts.0, self.rss_contacts.1],
        });
        std::fs::write(dir.join(Loaded::FILE), serde_json::to_string_pretty(&json)?)?;
        Ok(())
    }
}

/// The 30 segments a kept directory holds, as the run that created them
/// recorded them (`segments.json`): a later run with the same conditions
/// keeps them.
pub(crate) struct KeptSegments {
    pub(crate) conditions: Vec<String>,
    pub(crate) ids: Vec<String>,
    pub(crate) created_s: f64,
}

impl KeptSegments {
    const FILE: &str = "segments.json";

    /// The record in `dir`, if it holds `conditions` and the server holds
    /// exactly its segments (`held`).
    pub(crate) fn read(dir: &Path, conditions: &[String], held: &[String]) -> Option<KeptSegments> {
        let text = std::fs::read_to_string(dir.join(KeptSegments::FILE)).ok()?;
        let json: Json = serde_json::from_str(&text).ok()?;
        let strings = |key: &str| -> Option<Vec<String>> {
            json[key]
                .as_array()?
                .iter()
                .map(|v| v.as_str().map(String::from))
                .collect()
        };
        let kept = KeptSegments {
            conditions: strings("conditions")?,
            ids: strings("ids")?,
            created_s: json["created_s"].as_f64()?,
        };
        let mut ids = kept.ids.clone();
        let mut held = held.to_vec();
        ids.sort();
        held.sort();
        (kept.conditions == conditions && ids == held).then_some(kept)
    }

    pub(crate) fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let json = json!({
            "conditions": self.conditions,
            "ids": self.ids,
            "created_s": self.created_s,
        });
        std::fs::write(
            dir.join(KeptSegments::FILE),
            serde_json::to_string_pretty(&json)?,
        )?;
        Ok(())
    }
}
