//! Many timers due at one instant, fired a slice at a time so that a caller
//! holding the workspace behind a lock can let readers in between slices
//! (a million windows closing at midnight must not stall every read).
//!
//! The caller starts a burst with [`Workspace::begin_burst`], computes each
//! slice with [`Workspace::burst_slice`] (reads only: a shared lock is
//! enough) and applies it with [`Workspace::apply_burst_slice`]; the changes
//! gather in the workspace's pending write, which the next
//! [`Workspace::advance`] (or any write) carries to the store. Between slices
//! the workspace answers reads with part of the instant's flips applied, as
//! it does for a write applied but not yet durable. Whatever the caller
//! does, the workspace stays exact: any write first fires what is left of the
//! burst, and a slice computed before some other change is dropped.

use std::mem;

use sift_lang::DateTime;

use super::time::{Fired, Flips, PARALLEL_DUE};
use super::*;

/// Contacts due at one instant beyond this make a burst. Debug builds
/// burst from two, so that the differential tests fire in slices.
const BURST_MIN: usize = if cfg!(debug_assertions) {
    1
} else {
    PARALLEL_DUE
};

/// A burst in progress: the contacts of the next slice, popped from the
/// timer queue (the rest stay armed there at `at` until their turn).
#[derive(Clone, Debug)]
pub(super) struct Burst {
    serial: u64,
    at: DateTime,
    next: Vec<u32>,
    /// Whether contacts beyond `next` are due at `at`.
    more: bool,
    slice: usize,
}

/// One slice of a burst, computed under a shared borrow.
pub struct BurstSlice {
    serial: u64,
    fired: Vec<Option<Fired>>,
}

impl Workspace {
    /// Fires the timers due at or before `now` until it meets an instant
    /// when more than [`BURST_MIN`] contacts are due, and starts a burst of
    /// those, fired `slice` contacts at a time. False when none is (the
    /// caller then advances as usual).
    pub fn begin_burst(&mut self, now: DateTime, slice: usize) -> bool {
        self.finish_burst();
        let now = now.max(self.clock);
        let slice = slice.max(BURST_MIN + 1);
        let mut pending = mem::take(&mut self.pending);
        let mut started = false;
        // Popping a million heap entries takes ~90 ms: a slice at a time.
        while let Some((at, due, more)) = self.timers.pop_due_at_most(now, slice) {
            if more || due.len() > BURST_MIN {
                self.burst_serial += 1;
                self.burst = Some(Burst {
                    serial: self.burst_serial,
                    at,
                    next: due,
                    more,
                    slice,
                });
                started = true;
                break;
            }
            self.fire(at, &due, &mut pending);
        }
        self.pending = pending;
        started
    }

    /// Whether a burst has contacts left to fire.
    pub fn burst_in_progress(&self) -> bool {
        self.burst.is_some()
    }

    /// Computes the burst's next slice without changing anything. `None`
    /// when no burst is in progress.
    pub fn burst_slice(&self) -> Option<BurstSlice> {
        let burst = self.burst.as_ref()?;
        let mut fired = Vec::new();
        self.refire_all(&burst.next, burst.at, true, &mut fired);
        Some(BurstSlice {
            serial: burst.serial,
            fired,
        })
    }

    /// Applies a slice from [`Workspace::burst_slice`]; its changes join the
    /// pending write, and the next slice's contacts are popped. A slice
    /// computed before the burst moved on (or ended) is dropped. Ends the
    /// burst after its last slice.
    pub fn apply_burst_slice(&mut self, slice: BurstSlice) {
        let Some(burst) = self.burst.take() else {
            return;
        };
        if burst.serial != slice.serial {
            self.burst = Some(burst);
            return;
        }
        let mut flips = Flips::default();
        self.apply_fired(
            burst.at,
            slice.fired.into_iter().flatten(),
            true,
            &mut flips,
        );
        let mut pending = mem::take(&mut self.pending);
        self.propagate_flips(burst.at, flips, &mut pending);
        self.pending = pending;
        if !burst.more {
            return;
        }
        // Only contacts due at `at` remain at the top of the queue (every
        // refire re-armed its contact later), so this pops at `at`; the
        // instant popped is kept all the same. None: only stale entries
        // were left.
        if let Some((at, next, more)) = self.timers.pop_due_at_most(burst.at, burst.slice) {
            self.burst_serial += 1;
            self.burst = Some(Burst {
                serial: self.burst_serial,
                at,
                next,
                more,
                ..burst
            });
        }
    }

    /// Fires what is left of a burst in progress at once: every write does
    /// this first, so that it never sees an instant half fired.
    pub(super) fn finish_burst(&mut self) {
        let Some(burst) = self.burst.take() else {
            return;
        };
        let mut pending = mem::take(&mut self.pending);
        self.fire(burst.at, &burst.next, &mut pending);
        // The rest, still armed at `at`, whatever clock the caller has.
        while burst.more
            && let Some((at, due)) = self.timers.pop_due(burst.at)
        {
            self.fire(at, &due, &mut pending);
        }
        self.pending = pending;
    }
}
