//! The ids and keys the server makes up: workspace, segment, workflow,
//! rule, webhook and export ids (ULIDs), workspace keys and session
//! cookies.
//!
//! They are random, except inside [`drawn_from`]: there they come from a
//! seed and a business instant the caller chose. Cluster mode records both
//! with each write it logs, so that replaying the write on another node
//! makes the same ids and keys as the first application did.

use std::cell::RefCell;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

struct Draws {
    rng: StdRng,
    now_ms: i64,
}

tokio::task_local! {
    static DRAWS: RefCell<Draws>;
}

/// Runs `work` with every id and key it makes drawn from `seed`, ULIDs
/// stamped `now_ms`.
pub async fn drawn_from<F: std::future::Future>(seed: u64, now_ms: i64, work: F) -> F::Output {
    let draws = Draws {
        rng: StdRng::seed_from_u64(seed),
        now_ms,
    };
    DRAWS.scope(RefCell::new(draws), work).await
}

/// Random bytes, drawn from the seed inside [`drawn_from`].
pub fn fill(bytes: &mut [u8]) {
    if DRAWS
        .try_with(|draws| draws.borrow_mut().rng.fill(&mut *bytes))
        .is_err()
    {
        rand::rng().fill(bytes);
    }
}

/// A new id: `prefix`, `_`, a lower-case ULID.
pub fn new_id(prefix: &str) -> String {
    let drawn = DRAWS.try_with(|draws| {
        let mut draws = draws.borrow_mut();
        let random: u128 = draws.rng.random();
        let at = u64::try_from(draws.now_ms).unwrap_or(0);
        ulid::Ulid::from_parts(at, random)
    });
    let ulid = drawn.unwrap_or_else(|_| ulid::Ulid::new());
    format!("{prefix}_{}", ulid.to_string().to_lowercase())
}

/// A key as handed to a client: `sk_` and 32 random hex digits.
pub fn new_key() -> String {
    let mut bytes = [0u8; 16];
    fill(&mut bytes);
    format!(
        "sk_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// A key's public name: its first 11 characters (`sk_` + 8 hex digits).
pub fn key_id(key: &str) -> String {
    key.chars().take(11).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_seed_makes_the_same_ids_and_keys_again() {
        let draw = || async { (new_id("seg"), new_key(), new_id("wf")) };
        let first = drawn_from(7, 1_700_000_000_000, draw()).await;
        let again = drawn_from(7, 1_700_000_000_000, draw()).await;
        let other = drawn_from(8, 1_700_000_000_000, draw()).await;
        assert_eq!(first, again);
        assert_ne!(first, other);
        assert!(first.0.starts_with("seg_") && first.1.starts_with("sk_"));
        let (unseeded, _, _) = draw().await;
        assert_ne!(unseeded, first.0);
    }
}
