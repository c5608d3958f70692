//! Helpers both differential oracles use, written here (not taken from the
//! engine) so that neither inputs nor expectations come from the code under
//! test.

use sift_lang::Condition;

pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn fmt_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

pub fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
    )
}

pub fn refs_of(cond: &Condition, out: &mut Vec<String>) {
    match cond {
        Condition::All(children) | Condition::Any(children) => {
            children.iter().for_each(|c| refs_of(c, out))
        }
        Condition::Not(inner) => refs_of(inner, out),
        Condition::InSegment(id) => out.push(id.clone()),
        _ => {}
    }
}

/// `ignoring case` as docs/conditions.md defines it: both sides through
/// Unicode lowercase (`str::to_lowercase`), then compared as usual. This
/// lowercases a test's string operands.
pub fn lower_test(test: &sift_lang::FieldTest) -> sift_lang::FieldTest {
    use sift_lang::{FieldTest, Scalar};
    let lower = |s: &Scalar| match s {
        Scalar::String(x) => Scalar::String(x.to_lowercase()),
        other => other.clone(),
    };
    match test {
        FieldTest::Compare(op, s) => FieldTest::Compare(*op, lower(s)),
        FieldTest::Contains(s) => FieldTest::Contains(s.to_lowercase()),
        FieldTest::NotContains(s) => FieldTest::NotContains(s.to_lowercase()),
        FieldTest::StartsWith(s) => FieldTest::StartsWith(s.to_lowercase()),
        FieldTest::EndsWith(s) => FieldTest::EndsWith(s.to_lowercase()),
        FieldTest::In(list) => FieldTest::In(list.iter().map(lower).collect()),
        FieldTest::NotIn(list) => FieldTest::NotIn(list.iter().map(lower).collect()),
        other => other.clone(),
    }
}

/// Whether the generators may put `ignoring case` on `test`: the string
/// tests docs/conditions.md lists, with string values only.
pub fn case_foldable(test: &sift_lang::FieldTest) -> bool {
    use sift_lang::{CmpOp, FieldTest, Scalar};
    let strings = |l: &[Scalar]| l.iter().all(|s| matches!(s, Scalar::String(_)));
    match test {
        FieldTest::Compare(CmpOp::Eq | CmpOp::Ne, Scalar::String(_)) => true,
        FieldTest::Contains(_)
        | FieldTest::NotContains(_)
        | FieldTest::StartsWith(_)
        | FieldTest::EndsWith(_) => true,
        FieldTest::In(list) | FieldTest::NotIn(list) => strings(list),
        _ => false,
    }
}
