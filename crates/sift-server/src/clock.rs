//! Business time: the one clock the server reads for "now" (what it hands
//! the engine, what it stamps on records and what it waits for), so that
//! tests can drive time instead of waiting for it.
//!
//! [`Clock::System`] is the wall clock. [`Clock::Manual`] stands still until
//! a test [`set`](ManualClock::set)s or [`advance`](ManualClock::advance)s
//! it; tasks waiting for a business instant ([`Clock::sleep_until`]: timers,
//! retention, retries) wake as soon as the manual clock reaches it.
//!
//! Not business time, and so not read here: network deadlines (request
//! timeouts, connection limits), latency measurements, coalescing pauses and
//! UI sessions, which measure durations on the monotonic clock (`Instant`,
//! tokio time) and must keep working however a test moves the clock.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// Where the server's "now" comes from. Cheap to clone: every workspace
/// holds one, and clones of a manual clock share its time.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(ManualClock),
}

impl Clock {
    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => system_now_ms(),
            Clock::Manual(manual) => manual.now_ms(),
        }
    }

    /// Resolves once the clock reads `at_ms` or later.
    pub async fn sleep_until(&self, at_ms: i64) {
        match self {
            Clock::System => {
                let wait = at_ms.saturating_sub(system_now_ms()).max(0);
                tokio::time::sleep(Duration::from_millis(wait as u64)).await;
            }
            Clock::Manual(manual) => manual.reached(at_ms).await,
        }
    }
}

/// A clock that moves only when told to. Clones share one time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    // A watch channel rather than an atomic so that waiters wake on every
    // move; the sender is kept here, so waiting never sees it closed.
    now: Arc<watch::Sender<i64>>,
}

impl ManualClock {
    /// A clock standing at `at_ms`.
    pub fn at(at_ms: i64) -> ManualClock {
        ManualClock {
            now: Arc::new(watch::Sender::new(at_ms)),
        }
    }

    /// A clock standing at the wall clock's present instant.
    pub fn starting_now() -> ManualClock {
        ManualClock::at(system_now_ms())
    }

    pub fn now_ms(&self) -> i64 {
        *self.now.borrow()
    }

    /// Moves the clock to `at_ms`. Backwards is allowed (a clock that
    /// steps back is a case to test); waiters wake only once it reaches
    /// their instant.
    pub fn set(&self, at_ms: i64) {
        self.now.send_replace(at_ms);
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by_ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.now.send_modify(|now| *now = now.saturating_add(by_ms));
    }

    async fn reached(&self, at_ms: i64) {
        let mut moves = self.now.subscribe();
        // The sender lives as long as `self`: an error cannot happen while
        // this future is polled, and waiting on is the right answer if it did.
        if moves.wait_for(|now| *now >= at_ms).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl From<ManualClock> for Clock {
    fn from(manual: ManualClock) -> Clock {
        Clock::Manual(manual)
    }
}

/// The wall clock, for the few readers with no server configuration at
/// hand (the offline export of the CLI).
pub fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::{Clock, ManualClock};
    use std::time::Duration;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let manual = ManualClock::at(1_000);
        let clock = Clock::from(manual.clone());
        assert_eq!(clock.now_ms(), 1_000);
        manual.advance(Duration::from_millis(500));
        assert_eq!(clock.clone().now_ms(), 1_500);
        manual.set(200);
        assert_eq!(clock.now_ms(), 200);
    }

    #[tokio::test]
    async fn a_sleeper_wakes_when_the_manual_clock_reaches_its_instant() {
        let manual = ManualClock::at(0);
        let clock = Clock::from(manual.clone());
        let sleeper = tokio::spawn(async move { clock.sleep_until(10_000).await });
        tokio::task::yield_now().await;
        manual.advance(Duration::from_millis(9_999));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "woke before its instant");
        manual.advance(Duration::from_millis(1));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("the sleeper never woke")
            .expect("the sleeper panicked");
    }
}
