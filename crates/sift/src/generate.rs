//! The demo shop's data: contacts across the built-in fields plus a few
//! custom ones, and segments drawn like a marketer's. Shared by `sift demo`
//! and `sift bench`, seeded so that runs are repeatable.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sift_engine::{ContactInput, EventInput, RawValue, format_date};

const FIRST: &[&str] = &[
    "Ana", "Luis", "Marta", "João", "Emma", "Lucas", "Sofia", "Hugo", "Léa", "Noah", "Mia",
    "Pablo", "Inès", "Marco", "Julia",
];
const LAST: &[&str] = &[
    "García",
    "Silva",
    "Martin",
    "Rossi",
    "Müller",
    "López",
    "Dubois",
    "Costa",
    "Smith",
    "O'Neil",
    "Fernández",
    "Moreau",
];
pub const COUNTRIES: &[&str] = &["ES", "PT", "FR", "IT", "DE", "GB", "US", "MX", "BR", "NL"];
pub const INTERESTS: &[&str] = &[
    "shoes", "bags", "hats", "watches", "jeans", "dresses", "sport", "kids", "beauty", "home",
];
const SOURCES: &[&str] = &["organic", "facebook", "google", "newsletter", "referral"];
const TIERS: &[&str] = &["bronze", "silver", "gold", "platinum"];

pub struct Generator {
    rng: StdRng,
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        Generator {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.rng.random()
    }

    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.rng.random_range(0..list.len())]
    }

    /// Contact `n`: about ten properties, some missing, as a shop would have them.
    pub fn contact(&mut self, n: u64) -> ContactInput {
        let first = self.pick(FIRST);
        let last = self.pick(LAST);
        let mut properties = vec![
            (
                "email".to_string(),
                RawValue::String(format!("customer{n}@example.com")),
            ),
            (
                "first_name".to_string(),
                RawValue::String(first.to_string()),
            ),
            ("last_name".to_string(), RawValue::String(last.to_string())),
            (
                "country".to_string(),
                RawValue::String(self.pick(COUNTRIES).to_string()),
            ),
            (
                "newsletter".to_string(),
                RawValue::Bool(self.rng.random_bool(0.55)),
            ),
        ];
        if self.rng.random_bool(0.8) {
            let days = self.rng.random_range(-18_000..11_000);
            properties.push((
                "birth_date".to_string(),
                RawValue::String(format_date(days)),
            ));
        }
        if self.rng.random_bool(0.6) {
            properties.push((
                "phone".to_string(),
                RawValue::String(format!("+34 6{:08}", n % 100_000_000)),
            ));
        }
        let n_interests = self.rng.random_range(0..4);
        let interests: Vec<String> = (0..n_interests)
            .map(|_| self.pick(INTERESTS).to_string())
            .collect();
        if !interests.is_empty() {
            properties.push(("interests".to_string(), RawValue::StringList(interests)));
        }
        properties.push((
            "orders".to_string(),
            RawValue::Number(f64::from(self.rng.random_range(0..20u32))),
        ));
        properties.push((
            "signup_source".to_string(),
            RawValue::String(self.pick(SOURCES).to_string()),
        ));
        if self.rng.random_bool(0.3) {
            properties.push((
                "vip_tier".to_string(),
                RawValue::String(self.pick(TIERS).to_string()),
            ));
        }
        ContactInput {
            id: format!("c{n}"),
            properties,
            anonymous: None,
        }
    }

    /// A random single-property update of contact `n`.
    pub fn update(&mut self, n: u64) -> ContactInput {
        let properties = match self.rng.random_range(0..4) {
            0 => vec![(
                "newsletter".to_string(),
                RawValue::Bool(self.rng.random_bool(0.5)),
            )],
            1 => vec![(
                "orders".to_string(),
                RawValue::Number(f64::from(self.rng.random_range(0..20u32))),
            )],
            2 => vec![(
                "country".to_string(),
                RawValue::String(self.pick(COUNTRIES).to_string()),
            )],
            _ => {
                let interests = vec![
                    self.pick(INTERESTS).to_string(),
                    self.pick(INTERESTS).to_string(),
                ];
                vec![("interests".to_string(), RawValue::StringList(interests))]
            }
        };
        ContactInput {
            id: format!("c{n}"),
            properties,
            anonymous: None,
        }
    }

    /// A segment condition (text form) like a marketer would write.
    pub fn segment_condition(&mut self) -> String {
        let mut parts = Vec::new();
        let n_parts = self.rng.random_range(1..4);
        for _ in 0..n_parts {
            let part = match self.rng.random_range(0..7) {
                0 => format!("newsletter = {}", self.rng.random_bool(0.7)),
                1 => format!("interests contains \"{}\"", self.pick(INTERESTS)),
                2 => format!(
                    "birth_date >= {}",
                    format_date(self.rng.random_range(-15_000..5_000))
                ),
                3 => format!(
                    "country in [\"{}\", \"{}\"]",
                    self.pick(COUNTRIES),
                    self.pick(COUNTRIES)
                ),
                4 => format!("orders >= {}", self.rng.random_range(1..15)),
                5 => format!("signup_source = \"{}\"", self.pick(SOURCES)),
                _ => format!(
                    "(vip_tier = \"{}\" or orders > {})",
                    self.pick(TIERS),
                    self.rng.random_range(5..19)
                ),
            };
            parts.push(part);
        }
        parts.join(" and ")
    }
}

pub const EVENT_TYPES: &[&str] = &["page_visit", "product_view", "email_open", "purchase"];
const CATEGORIES: &[&str] = &["shoes", "bags", "hats", "watches", "jeans", "dresses"];
const DAY_MS: i64 = 86_400_000;

impl Generator {
    /// An event of contact `n` at a random time in the `span_days` before `now`.
    pub fn event(&mut self, n: u64, now: i64, span_days: i64) -> EventInput {
        let event_type = match self.rng.random_range(0..10) {
            0..4 => "page_visit",
            4..7 => "product_view",
            7..9 => "email_open",
            _ => "purchase",
        };
        let category = self.pick(CATEGORIES);
        let properties: Vec<(String, RawValue)> = match event_type {
            "purchase" => vec![
                (
                    "amount".into(),
                    RawValue::Number(f64::from(self.rng.random_range(10..600u32)) / 2.0),
                ),
                ("category".into(), RawValue::String(category.into())),
            ],
            "product_view" => vec![
                ("category".into(), RawValue::String(category.into())),
                (
                    "price".into(),
                    RawValue::Number(f64::from(self.rng.random_range(5..300u32))),
                ),
            ],
            "page_visit" => vec![("path".into(), RawValue::String(format!("/{category}")))],
            _ => vec![(
                "campaign".into(),
                RawValue::String(format!("spring-{}", self.rng.random_range(1..6))),
            )],
        };
        let json: serde_json::Map<String, serde_json::Value> = properties
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    RawValue::Number(x) => serde_json::json!(x),
                    RawValue::String(s) => serde_json::json!(s),
                    _ => serde_json::Value::Null,
                };
                (k.clone(), value)
            })
            .collect();
        EventInput {
            id: None,
            contact_id: format!("c{n}"),
            event_type: event_type.into(),
            at: Some(now - self.rng.random_range(0..span_days.max(1) * DAY_MS)),
            properties,
            properties_json: serde_json::Value::Object(json).to_string(),
            anonymous: None,
        }
    }

    /// An event of anonymous visitor `k` (a cookie id `anon_…`): a page
    /// visit or a product view, which create the visitor as anonymous.
    pub fn anonymous_event(&mut self, k: u64, now: i64, span_days: i64) -> EventInput {
        let mut event = self.event(k, now, span_days);
        if !matches!(event.event_type.as_str(), "page_visit" | "product_view") {
            event = self.event(k, now, span_days);
        }
        if !matches!(event.event_type.as_str(), "page_visit" | "product_view") {
            event.event_type = "page_visit".into();
            event.properties = vec![("path".into(), RawValue::String("/".into()))];
            event.properties_json = r#"{"path":"/"}"#.into();
        }
        event.contact_id = anonymous_id(k);
        event.anonymous = Some(true);
        event
    }

    /// A behavioural or time-relative condition like a marketer would write.
    pub fn behaviour_condition(&mut self) -> String {
        let days = [7, 14, 30, 60, 90][self.rng.random_range(0..5)];
        let kind = self.pick(EVENT_TYPES);
        let part = match self.rng.random_range(0..8) {
            0 => format!("performed {kind} in last {days} days"),
            1 => format!(
                "performed purchase where amount > {} at least {} times in last {days} days",
                [20, 50, 100][self.rng.random_range(0..3)],
                self.rng.random_range(1..4)
            ),
            2 => format!("not performed {kind} in last {days} days"),
            3 => format!(
                "total purchase.amount >= {} in last {days} days",
                [50, 100, 250][self.rng.random_range(0..3)]
            ),
            4 => format!(
                "performed product_view where category = \"{}\" in last {days} days",
                self.pick(CATEGORIES)
            ),
            5 => format!("last_seen_at in last {days} days"),
            6 => format!(
                "birth_date before {} years ago",
                [18, 21, 30, 40, 65][self.rng.random_range(0..5)]
            ),
            _ => format!(
                "performed email_open at least {} times",
                self.rng.random_range(1..5)
            ),
        };
        if self.rng.random_bool(0.3) {
            format!("{part} and country = \"{}\"", self.pick(COUNTRIES))
        } else {
            part
        }
    }
}

/// The cookie id of anonymous visitor `k`.
pub fn anonymous_id(k: u64) -> String {
    format!("anon_{:08x}", k.wrapping_mul(0x9E37_79B9) & 0xffff_ffff)
}

/// The spec's first example.
pub const EXAMPLE: &str =
    "newsletter = true and interests contains \"shoes\" and birth_date >= 1965-01-01";

/// The demo's named segments.
pub const DEMO_SEGMENTS: &[(&str, &str, &str)] = &[
    (
        "Newsletter shoe lovers",
        "Subscribed, into shoes, born 1965 or later",
        EXAMPLE,
    ),
    (
        "Spain and Portugal",
        "Iberian customers",
        "country in [\"ES\", \"PT\"]",
    ),
    ("Loyal buyers", "Ten orders or more", "orders >= 10"),
    (
        "VIP customers",
        "Gold or platinum tier",
        "vip_tier in [\"gold\", \"platinum\"]",
    ),
    (
        "VIPs outside Spain",
        "VIPs for international campaigns",
        "in segment \"VIP customers\" and country != \"ES\"",
    ),
    ("No phone", "Reachable by email only", "phone is not set"),
    (
        "Recent buyers",
        "Bought in the last 30 days",
        "performed purchase in last 30 days",
    ),
    (
        "Big spenders",
        "Spent 200 or more in the last year",
        "total purchase.amount >= 200 in last 365 days",
    ),
    (
        "Lapsed visitors",
        "No page visit in 60 days",
        "not performed page_visit in last 60 days",
    ),
    (
        "Shoe browsers",
        "Viewed shoes twice this month",
        "performed product_view where category = \"shoes\" at least 2 times in last 30 days",
    ),
    ("Hot leads", "Lead score of 20 or more", "lead_score >= 20"),
    (
        "Adults",
        "18 or older today",
        "birth_date before 18 years ago",
    ),
    (
        "Anonymous visitors",
        "Known only by a cookie id, not identified yet",
        "anonymous = true",
    ),
];

/// The demo's scoring rules: (event type, where, points, expires after).
pub const DEMO_RULES: &[(&str, Option<&str>, f64, Option<&str>)] = &[
    ("purchase", None, 10.0, Some("90d")),
    ("email_open", None, 1.0, Some("30d")),
    (
        "product_view",
        Some("category = \"shoes\""),
        2.0,
        Some("30d"),
    ),
];
