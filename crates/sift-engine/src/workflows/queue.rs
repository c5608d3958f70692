//! The queue of triggers of [`Workflows`]: numbering, the per-workflow
//! bound and the count of what it dropped, consuming in number order, and
//! restoring from the store.

use sift_lang::DateTime;

use super::{DEFAULT_MAX_QUEUED, QueueBatch, QueuedItem, TriggerKind, Workflows};

/// Triggers of a workflow that were not queued because its queue was full:
/// as a record, the ones one write dropped (`since == last_at`, the
/// write's instant); as a workflow's state, all those dropped since it last
/// started running (its `generation`).
#[derive(Clone, Debug, PartialEq)]
pub struct DroppedTriggers {
    pub workflow_id: String,
    pub generation: u32,
    pub count: u64,
    /// When the first of them was dropped.
    pub since: DateTime,
    /// When the last of them was dropped.
    pub last_at: DateTime,
}

impl DroppedTriggers {
    /// Adds a later drop; a drop of a newer generation starts afresh.
    pub fn merge(&mut self, later: &DroppedTriggers) {
        if later.generation == self.generation {
            self.count += later.count;
            self.last_at = self.last_at.max(later.last_at);
        } else if later.generation > self.generation {
            *self = later.clone();
        }
    }
}

impl Workflows {
    // -- the queue ------------------------------------------------------------

    /// The bound on the triggers of one workflow waiting to run.
    pub fn max_queued(&self) -> u64 {
        self.max_queued.unwrap_or(DEFAULT_MAX_QUEUED)
    }

    pub fn set_max_queued(&mut self, max: u64) {
        self.max_queued = Some(max);
    }

    /// How many more triggers workflow `index` may queue.
    pub fn room(&self, index: usize) -> u64 {
        let waiting = self.queued_for(&self.defs[index].id);
        self.max_queued().saturating_sub(waiting)
    }

    /// Queues triggers of workflow `index`, numbering them, as far as its
    /// bound allows (the earliest items first); answers the batch (none when
    /// nothing fit) and what was dropped at `at`: the items that did not
    /// fit and `beyond`, triggers the caller already left out of `items`
    /// for want of [`Workflows::room`].
    pub fn enqueue(
        &mut self,
        index: usize,
        depth: u32,
        trigger: TriggerKind,
        mut items: Vec<QueuedItem>,
        beyond: u64,
        at: DateTime,
    ) -> (Option<QueueBatch>, Option<DroppedTriggers>) {
        let room = self.room(index);
        let def = &self.defs[index];
        let overflow = (items.len() as u64).saturating_sub(room);
        let dropped = overflow + beyond;
        let dropped = (dropped > 0).then(|| {
            items.truncate(items.len() - overflow as usize);
            DroppedTriggers {
                workflow_id: def.id.clone(),
                generation: def.generation,
                count: dropped,
                since: at,
                last_at: at,
            }
        });
        if let Some(drop) = &dropped {
            self.restore_dropped(drop.clone());
        }
        if items.is_empty() {
            return (None, dropped);
        }
        let def = &self.defs[index];
        let batch = QueueBatch {
            first_id: self.next_id,
            workflow_id: def.id.clone(),
            generation: def.generation,
            depth,
            trigger,
            items,
        };
        self.next_id = batch.end_id();
        *self.waiting.entry(batch.workflow_id.clone()).or_default() += batch.items.len() as u64;
        self.queue.push_back(batch.clone());
        (Some(batch), dropped)
    }

    /// Counts dropped triggers (a write's, or stored ones on restore).
    pub fn restore_dropped(&mut self, drop: DroppedTriggers) {
        match self.dropped.get_mut(&drop.workflow_id) {
            Some(known) => known.merge(&drop),
            None => {
                self.dropped.insert(drop.workflow_id.clone(), drop);
            }
        }
    }

    /// Triggers of workflow `id` dropped since it last started running.
    pub fn dropped_for(&self, id: &str) -> Option<&DroppedTriggers> {
        let generation = self.get(id)?.generation;
        self.dropped.get(id).filter(|d| d.generation == generation)
    }

    /// Restores a stored batch; items before the cursor were consumed.
    pub fn restore_batch(&mut self, batch: QueueBatch) {
        if batch.end_id() <= self.cursor {
            return;
        }
        self.next_id = self.next_id.max(batch.end_id());
        let skip = if self.queue.is_empty() {
            self.head = (self.cursor.saturating_sub(batch.first_id)) as usize;
            self.head
        } else {
            0
        };
        let left = batch.items.len().saturating_sub(skip) as u64;
        *self.waiting.entry(batch.workflow_id.clone()).or_default() += left;
        self.queue.push_back(batch);
    }

    /// Restores the cursor and the next id (before the batches).
    pub fn restore_cursor(&mut self, cursor: u64, next_id: u64) {
        self.cursor = cursor;
        self.next_id = next_id.max(cursor);
        self.queue.clear();
        self.waiting.clear();
        self.head = 0;
    }

    /// The next trigger to run: (id, batch, item index); consumed.
    pub fn pop(&mut self) -> Option<(u64, QueuedItem, QueueHead)> {
        loop {
            let batch = self.queue.front()?;
            if self.head >= batch.items.len() {
                self.queue.pop_front();
                self.head = 0;
                continue;
            }
            let item = batch.items[self.head].clone();
            let id = batch.first_id + self.head as u64;
            let head = QueueHead {
                workflow_id: batch.workflow_id.clone(),
                generation: batch.generation,
                depth: batch.depth,
                trigger: batch.trigger.clone(),
            };
            self.head += 1;
            self.cursor = id + 1;
            if let Some(n) = self.waiting.get_mut(&head.workflow_id) {
                *n = n.saturating_sub(1);
            }
            return Some((id, item, head));
        }
    }

    /// The first trigger id not yet consumed.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Triggers waiting to run.
    pub fn queued(&self) -> u64 {
        // Numbers are handed out consecutively and consumed in order.
        self.next_id.saturating_sub(self.cursor)
    }

    /// Triggers of workflow `id` waiting to run (stale ones included).
    pub fn queued_for(&self, id: &str) -> u64 {
        self.waiting.get(id).copied().unwrap_or(0)
    }

    /// The waiting batches, the front one trimmed to what is left.
    pub fn pending(&self) -> Vec<QueueBatch> {
        self.queue
            .iter()
            .enumerate()
            .map(|(k, batch)| {
                let skip = if k == 0 { self.head } else { 0 };
                QueueBatch {
                    first_id: batch.first_id + skip as u64,
                    items: batch.items[skip.min(batch.items.len())..].to_vec(),
                    ..batch.clone()
                }
            })
            .filter(|b| !b.items.is_empty())
            .collect()
    }
}

/// What a popped trigger's batch says about it.
#[derive(Clone, Debug)]
pub struct QueueHead {
    pub workflow_id: String,
    pub generation: u32,
    pub depth: u32,
    pub trigger: TriggerKind,
}
