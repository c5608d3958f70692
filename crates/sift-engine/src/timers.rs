//! The timer queue: for every contact, the next instant at which something
//! time-dependent about it can change (an event leaving a window, a date
//! crossing a relative threshold, points expiring). Nothing scans all
//! contacts on a schedule; the server sleeps until the earliest instant.
//!
//! Each contact has one pending instant. Lowering it pushes a new heap entry
//! and leaves the old one stale (skipped when popped); a timer that fires
//! early finds nothing changed and is re-armed, which keeps every producer
//! simple: it only ever proposes an earlier instant.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use sift_lang::DateTime;

use crate::paged::PagedVec;
use crate::time::NEVER;

#[derive(Clone, Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(DateTime, u32)>>,
    next: PagedVec<DateTime>,
}

impl Timers {
    /// Arms contact `no` at `at` unless it is already armed earlier.
    pub fn schedule(&mut self, no: u32, at: DateTime) {
        if at >= NEVER {
            return;
        }
        let index = no as usize;
        if index >= self.next.len() {
            self.next.resize(index + 1, NEVER);
        }
        if at < self.next[index] {
            self.next[index] = at;
            self.heap.push(Reverse((at, no)));
        }
    }

    /// Replaces every pending instant at once (after a restore): `next[no]`.
    pub fn rebuild(&mut self, next: Vec<DateTime>) {
        self.heap = next
            .iter()
            .enumerate()
            .filter(|(_, at)| **at < NEVER)
            .map(|(no, at)| Reverse((*at, no as u32)))
            .collect();
        self.next = PagedVec::from(next);
    }

    /// Contact `no`'s pending instant ([`NEVER`] when unarmed), for a
    /// checkpoint.
    pub fn armed(&self, no: u32) -> DateTime {
        self.next.get(no as usize).copied().unwrap_or(NEVER)
    }

    /// The pending instants alone, for a checkpoint copy taken under the
    /// write lock: the heap is left out (its size follows the armed
    /// contacts, not a page count) because a checkpoint reads only
    /// [`Timers::armed`].
    pub fn copy_for_checkpoint(&self) -> Timers {
        Timers {
            heap: BinaryHeap::new(),
            next: self.next.clone(),
        }
    }

    /// The earliest pending instant (possibly of a stale entry).
    pub fn peek(&self) -> Option<DateTime> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops the contacts due at the earliest pending instant, if it is at or
    /// before `now`; they are disarmed.
    pub fn pop_due(&mut self, now: DateTime) -> Option<(DateTime, Vec<u32>)> {
        self.pop_due_at_most(now, usize::MAX)
            .map(|(at, due, _)| (at, due))
    }

    /// [`Timers::pop_due`], popping at most `max` contacts (ascending);
    /// also answers whether more are due at that instant.
    pub fn pop_due_at_most(
        &mut self,
        now: DateTime,
        max: usize,
    ) -> Option<(DateTime, Vec<u32>, bool)> {
        loop {
            let &Reverse((at, _)) = self.heap.peek()?;
            if at > now {
                return None;
            }
            let mut due = Vec::new();
            while due.len() < max
                && let Some(&Reverse((t, no))) = self.heap.peek()
            {
                if t != at {
                    break;
                }
                self.heap.pop();
                // A contact re-armed since has a stale entry here; a
                // disarmed one (popped at this instant already) too.
                if let Some(next) = self.next.get_mut(no as usize)
                    && *next == at
                {
                    *next = NEVER;
                    due.push(no);
                }
            }
            let more = self.heap.peek().is_some_and(|Reverse((t, _))| *t == at);
            if !due.is_empty() {
                // The heap orders entries of one instant by contact number.
                debug_assert!(due.is_sorted());
                return Some((at, due, more));
            }
        }
    }

    pub fn pending(&self) -> usize {
        self.heap.len()
    }
}
