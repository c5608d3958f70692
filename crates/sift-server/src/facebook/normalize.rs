//! Facebook's customer-list identifiers: which keys exist, how each value is
//! normalized and hashed, and a contact's row.
//!
//! Rules from Facebook's "Customer list custom audiences" hashing and
//! normalization table and the Business SDK's `serverside/normalize.py`
//! (docs/api.md "Facebook Custom Audience export" lists them with sources).
//! Pure functions: no IO, no clock.

use sha2::{Digest, Sha256};
use sift_engine::{ContactView, Value, format_date};

/// The identifier keys of a customer-list `schema`, in Facebook's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Email,
    Phone,
    Fn,
    Ln,
    Country,
    Doby,
    Dobm,
    Dobd,
    Gen,
    ExternId,
}

impl Key {
    pub const ALL: [Key; 10] = [
        Key::Email,
        Key::Phone,
        Key::Fn,
        Key::Ln,
        Key::Country,
        Key::Doby,
        Key::Dobm,
        Key::Dobd,
        Key::Gen,
        Key::ExternId,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Key::Email => "EMAIL",
            Key::Phone => "PHONE",
            Key::Fn => "FN",
            Key::Ln => "LN",
            Key::Country => "COUNTRY",
            Key::Doby => "DOBY",
            Key::Dobm => "DOBM",
            Key::Dobd => "DOBD",
            Key::Gen => "GEN",
            Key::ExternId => "EXTERN_ID",
        }
    }

    /// Accepts the name in any case, so `email` works as well as `EMAIL`.
    pub fn parse(text: &str) -> Option<Key> {
        Key::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(text.trim()))
    }

    /// Facebook matches EXTERN_ID as sent; every other key is SHA-256 hashed.
    pub fn hashed(self) -> bool {
        self != Key::ExternId
    }

    /// The contact field each key reads (`None`: the contact's id).
    pub fn field(self) -> Option<&'static str> {
        match self {
            Key::Email => Some("email"),
            Key::Phone => Some("phone"),
            Key::Fn => Some("first_name"),
            Key::Ln => Some("last_name"),
            Key::Country => Some("country"),
            Key::Doby | Key::Dobm | Key::Dobd => Some("birth_date"),
            Key::Gen => Some(GENDER_FIELD),
            Key::ExternId => None,
        }
    }
}

/// GEN is read from a custom field of this name when the workspace has one.
pub const GENDER_FIELD: &str = "gender";

/// Trimmed and lower-cased.
pub fn email(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// Digits only, without leading zeros, so `+49 …`, `0049 …` and `49 …` are
/// the same number. Facebook needs the country code in the number: a
/// national number (`030 …`) cannot be told apart from one that lacks it.
pub fn phone(raw: &str) -> String {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    digits.trim_start_matches('0').to_string()
}

/// Lower-case letters only: punctuation, spaces and digits go, letters with
/// accents stay (Facebook: "special characters in UTF-8 format").
pub fn name(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect()
}

/// ISO 3166-1 alpha-2, lower case; a few common English names are mapped.
/// Anything else is no value: a wrong country would only mismatch.
pub fn country(raw: &str) -> String {
    let letters: String = raw
        .chars()
        .filter(|c| c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect();
    if letters.len() == 2 && ISO_3166_ALPHA2.split(' ').any(|code| code == letters) {
        return letters;
    }
    COUNTRY_NAMES
        .iter()
        .find(|(full, _)| *full == letters)
        .map_or_else(String::new, |(_, code)| (*code).to_string())
}

/// `m` or `f` from the value's first letter (`Male`, `F`, `female`…).
pub fn gender(raw: &str) -> String {
    match raw.trim().chars().next().map(|c| c.to_ascii_lowercase()) {
        Some(c @ ('m' | 'f')) => c.to_string(),
        _ => String::new(),
    }
}

/// (`YYYY`, `MM`, `DD`) of a date; empty parts for years outside 1000–9999.
pub fn birth_date(text: &str) -> (String, String, String) {
    let parts: Vec<&str> = text.split('-').collect();
    match parts.as_slice() {
        [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2 => {
            (y.to_string(), m.to_string(), d.to_string())
        }
        _ => (String::new(), String::new(), String::new()),
    }
}

/// Lower-case hex SHA-256 of the UTF-8 bytes.
pub fn sha256_hex(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(HEX[(byte >> 4) as usize] as char);
        out.push(HEX[(byte & 15) as usize] as char);
    }
    out
}

/// A key's normalized (not yet hashed) value for a contact; empty when the
/// contact has none.
pub fn normalized(view: &ContactView, key: Key) -> String {
    let Some(field) = key.field() else {
        return view.id.clone();
    };
    let Some(value) = view
        .properties
        .iter()
        .find(|(n, _)| n == field)
        .map(|(_, v)| v)
    else {
        return String::new();
    };
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Date(d) => format_date(*d),
        // A phone stored as a number is still a phone.
        Value::Number(n) if key == Key::Phone && n.fract() == 0.0 && *n >= 0.0 => {
            format!("{n:.0}")
        }
        _ => return String::new(),
    };
    match key {
        Key::Email => email(&text),
        Key::Phone => phone(&text),
        Key::Fn | Key::Ln => name(&text),
        Key::Country => country(&text),
        Key::Doby => birth_date(&text).0,
        Key::Dobm => birth_date(&text).1,
        Key::Dobd => birth_date(&text).2,
        Key::Gen => gender(&text),
        Key::ExternId => text,
    }
}

/// What a contact contributes to an audience.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// One cell per key of the schema: hashed, EXTERN_ID as is, empty
    /// where the contact has no value.
    Row(Vec<String>),
    /// No hashed identifier: Facebook could not match it.
    NoIdentifier,
    /// `newsletter` is explicitly false: consent withdrawn, never sent.
    Unsubscribed,
}

pub fn outcome(view: &ContactView, keys: &[Key]) -> Outcome {
    let unsubscribed = view
        .properties
        .iter()
        .any(|(n, v)| n == "newsletter" && *v == Value::Boolean(false));
    if unsubscribed {
        return Outcome::Unsubscribed;
    }
    let mut any_hashed = false;
    let row = keys
        .iter()
        .map(|&key| {
            let value = normalized(view, key);
            if value.is_empty() || !key.hashed() {
                return value;
            }
            any_hashed = true;
            sha256_hex(&value)
        })
        .collect();
    if any_hashed {
        Outcome::Row(row)
    } else {
        Outcome::NoIdentifier
    }
}

/// Every ISO 3166-1 alpha-2 code (from the tz database's `iso3166.tab`).
const ISO_3166_ALPHA2: &str = "ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bl bm bn bo bq \
br bs bt bv bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm \
do dz ec ee eg eh er es et fi fj fk fm fo fr ga gb gd ge gf gg gh gi gl gm gn gp gq gr gs \
gt gu gw gy hk hm hn hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn \
kp kr kw ky kz la lb lc li lk lr ls lt lu lv ly ma mc md me mf mg mh mk ml mm mn mo mp mq \
mr ms mt mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm \
pn pr ps pt pw py qa re ro rs ru rw sa sb sc sd se sg sh si sj sk sl sm sn so sr ss st sv \
sx sy sz tc td tf tg th tj tk tl tm tn to tr tt tv tw tz ua ug um us uy uz va vc ve vg vi \
vn vu wf ws ye yt za zm zw";

/// Full names (letters only, lower case) that data often holds instead of
/// codes; `uk` is the common mistake for `gb`.
const COUNTRY_NAMES: &[(&str, &str)] = &[
    ("unitedstates", "us"),
    ("unitedstatesofamerica", "us"),
    ("usa", "us"),
    ("unitedkingdom", "gb"),
    ("uk", "gb"),
    ("greatbritain", "gb"),
    ("spain", "es"),
    ("espana", "es"),
    ("españa", "es"),
    ("france", "fr"),
    ("germany", "de"),
    ("deutschland", "de"),
    ("italy", "it"),
    ("portugal", "pt"),
    ("netherlands", "nl"),
    ("canada", "ca"),
    ("mexico", "mx"),
    ("brazil", "br"),
    ("australia", "au"),
    ("ireland", "ie"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_in_any_case() {
        assert_eq!(Key::parse("email"), Some(Key::Email));
        assert_eq!(Key::parse("EXTERN_ID"), Some(Key::ExternId));
        assert_eq!(Key::parse("MAIL"), None);
    }

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(email("  Ana.Lopez@Example.COM \n"), "ana.lopez@example.com");
    }

    #[test]
    fn phones_keep_digits_without_leading_zeros() {
        assert_eq!(phone("+49 (30) 123-456 78"), "493012345678");
        assert_eq!(phone("0049 30 12345678"), "493012345678");
        assert_eq!(phone("+1 (650) 555-1212"), "16505551212");
        assert_eq!(phone("tel: ---"), "");
    }

    #[test]
    fn names_keep_letters_with_accents() {
        assert_eq!(name("  Zoë-Anne O'Brien "), "zoëanneobrien");
        assert_eq!(name("ÉMILE"), "émile");
        assert_eq!(name("J. R. 2nd"), "jrnd");
    }

    #[test]
    fn countries_are_iso_codes() {
        assert_eq!(country(" ES "), "es");
        assert_eq!(country("United States"), "us");
        assert_eq!(country("UK"), "gb");
        assert_eq!(country("XX"), "");
        assert_eq!(country("Narnia"), "");
    }

    #[test]
    fn genders_and_dates() {
        assert_eq!(gender("Female"), "f");
        assert_eq!(gender(" m"), "m");
        assert_eq!(gender("other"), "");
        assert_eq!(
            birth_date("1987-03-09"),
            ("1987".into(), "03".into(), "09".into())
        );
        assert_eq!(birth_date("87-3-9").0, "");
    }

    #[test]
    fn hashes_are_lower_case_hex_sha256() {
        // printf '%s' 'ana@example.com' | sha256sum
        assert_eq!(
            sha256_hex("ana@example.com"),
            "8e43ca37701228e74983efdbd0cff5c16b3b1e5d4e29a7c05626d4d25a018e11"
        );
        // printf '%s' 'zoëanneobrien' | sha256sum (UTF-8 bytes)
        assert_eq!(
            sha256_hex(&name("  Zoë-Anne O'Brien ")),
            "525ff9dd81c309bb73dc2b9f5db9f50fed309a1cd48e91034078506b269b23b5"
        );
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
