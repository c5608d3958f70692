//! The delivery loop of one subscription: a step picks the batch to send
//! (the one being retried, or the next one cut from the open window, opening
//! one when needed) and attempts it; then the task waits for what the step
//! asked for, with the workspace let go. The parent module holds the pieces
//! the steps use (cutting batches, signing, posting, waiting).

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sift_store::{PendingBatch, WebhookCursor, WebhookRow, WebhookWrite, WorkspaceReader};
use tokio::sync::watch;

use super::{
    Batch, LastError, SKIP_PERSIST_EVERY, Settings, State, Subscription, advance, backoff, build,
    post, probe, read_failed, wait, with_reader,
};
use crate::workspace::service::WorkspaceService;

/// What the task does once a step is over and it has let go of the
/// workspace (a task waiting must not keep a closed workspace alive).
enum Next {
    /// Goes round again at once.
    Again,
    /// Sleeps until the wake-up, or until it must end.
    Wait(Wake),
    /// Ends the task: the workspace is closing or gone.
    Stop,
}

/// What ends a wait, besides a stop or a change of the webhook's settings.
enum Wake {
    /// Nothing else: the webhook is disabled.
    Config,
    /// A commit of the change log (or of the event log, when `events`).
    Commit { events: bool },
    /// The given delay: a retry or a pause after a failed read.
    After(Duration),
}

/// One subscription's delivery loop and what it carries between batches.
struct Task {
    weak: Weak<WorkspaceService>,
    subscription: Arc<Subscription>,
    client: reqwest::Client,
    settings: Settings,
    reader: Arc<Mutex<WorkspaceReader>>,
    closed: watch::Receiver<bool>,
    durable: watch::Receiver<u64>,
    committed: watch::Receiver<u64>,
    config: watch::Receiver<WebhookRow>,
    cursor: WebhookCursor,
    /// The open window, finished before another is opened.
    window: Option<PendingBatch>,
    /// The cursor as last queued to the writer.
    persisted: WebhookCursor,
    /// A batch that failed, tried again after its backoff.
    batch: Option<Batch>,
}

pub(in crate::webhooks) async fn run(
    weak: Weak<WorkspaceService>,
    subscription: Arc<Subscription>,
    client: reqwest::Client,
    path: std::path::PathBuf,
    settings: Settings,
) {
    if let Some(task) = Task::start(weak, subscription, client, &path, settings) {
        task.deliver().await;
    }
}

impl Task {
    /// Setup: subscribes to the workspace's signals, opens the reader and
    /// resumes from the stored cursor. `None` when there is nothing to run.
    fn start(
        weak: Weak<WorkspaceService>,
        subscription: Arc<Subscription>,
        client: reqwest::Client,
        path: &std::path::Path,
        settings: Settings,
    ) -> Option<Task> {
        let handle = weak.upgrade()?;
        let closed = handle.signals.closed.subscribe();
        let durable = handle.signals.durable.subscribe();
        let committed = handle.signals.committed.subscribe();
        drop(handle);
        let config = subscription.config.subscribe();
        let reader = match WorkspaceReader::open(path) {
            Ok(reader) => Arc::new(Mutex::new(reader)),
            Err(error) => {
                tracing::error!(%error, "a webhook cannot read the change log; it stops");
                return None;
            }
        };
        let stored = subscription.status().cursor;
        let cursor = WebhookCursor {
            pending: None,
            ..stored
        };
        Some(Task {
            weak,
            subscription,
            client,
            settings,
            reader,
            closed,
            durable,
            committed,
            config,
            cursor,
            // After a restart, the stored window is finished first, cut into
            // the same batches as before.
            window: stored.pending,
            persisted: cursor,
            batch: None,
        })
    }

    /// The loop: a step, then its wait with the workspace let go.
    async fn deliver(mut self) {
        loop {
            if *self.closed.borrow() {
                return;
            }
            let go_on = match self.step().await {
                Next::Again => true,
                Next::Wait(wake) => self.sleep(wake).await,
                Next::Stop => false,
            };
            if !go_on {
                return;
            }
        }
    }

    /// Waits for `wake`; `false` when the task must end.
    async fn sleep(&mut self, wake: Wake) -> bool {
        let (closed, config) = (&mut self.closed, &mut self.config);
        match wake {
            Wake::Config => wait(closed, config, None, None, None).await,
            Wake::Commit { events } => {
                let events = events.then_some(&mut self.committed);
                wait(closed, config, Some(&mut self.durable), events, None).await
            }
            Wake::After(delay) => wait(closed, config, None, None, Some(delay)).await,
        }
    }

    /// One step: the batch to send (the one being retried, or the next one
    /// cut from the open window), then one attempt at it.
    async fn step(&mut self) -> Next {
        let row = self.config.borrow_and_update().clone();
        if !row.enabled {
            self.subscription.update(|s| {
                s.state = State::Disabled;
                s.next_attempt_at = None;
            });
            return Next::Wait(Wake::Config);
        }
        let Some(handle) = self.weak.upgrade() else {
            return Next::Stop;
        };
        let batch = match self.batch.take() {
            Some(batch) => batch,
            None => match self.next_batch(&handle, &row).await {
                Ok(batch) => batch,
                Err(next) => return next,
            },
        };
        self.attempt(&handle, &row, batch).await
    }

    /// The next batch of the open window, opening one if none is; the
    /// `Err` says what to do when there is no batch to send now.
    async fn next_batch(
        &mut self,
        handle: &Arc<WorkspaceService>,
        row: &WebhookRow,
    ) -> Result<Batch, Next> {
        let cursor = self.cursor;
        let open = self
            .window
            .filter(|w| cursor.change_seq < w.change_end || cursor.event_seq < w.event_end);
        let current = match open {
            Some(w) => w,
            None => self.open_window(handle, row).await?,
        };
        match self.build_batch(handle, row, current).await {
            Ok((end, None)) => {
                // Only other segments' changes here: move on.
                self.cursor.change_seq = end.change_end;
                self.cursor.event_seq = end.event_end;
                Err(Next::Again)
            }
            Ok((_, Some(built))) => {
                let window = self.window;
                self.subscription.update(|s| {
                    s.state = State::Delivering;
                    s.delivery_id = Some(built.id.clone());
                    s.attempts = 0;
                    s.cursor.pending = window;
                });
                Ok(built)
            }
            Err(message) => Err(self.read_failed(row, &message)),
        }
    }

    /// Probes for something to send; with something, stores the new window
    /// before its first attempt.
    async fn open_window(
        &mut self,
        handle: &WorkspaceService,
        row: &WebhookRow,
    ) -> Result<PendingBatch, Next> {
        // Marked seen before reading, so a commit after the read wakes us.
        let target = *self.durable.borrow_and_update();
        self.committed.borrow_and_update();
        let (probe_row, from) = (row.clone(), self.cursor);
        let probed = with_reader(&self.reader, move |r| probe(r, &probe_row, &from, target)).await;
        match probed {
            Ok((w, true)) => {
                let begin = WebhookWrite::Begin {
                    id: row.id.clone(),
                    batch: w,
                };
                let started = Instant::now();
                if handle.commit_webhooks(vec![begin]).await.is_err() {
                    return Err(Next::Stop);
                }
                metrics::histogram!("sift_webhook_commit_seconds")
                    .record(started.elapsed().as_secs_f64());
                self.window = Some(w);
                Ok(w)
            }
            Ok((w, false)) => Err(self.skip_to(handle, row, w)),
            Err(message) => Err(self.read_failed(row, &message)),
        }
    }

    /// Nothing for this webhook up to `w`: the cursor moves there (stored
    /// now and then) and the task sleeps until the next commit.
    fn skip_to(&mut self, handle: &WorkspaceService, row: &WebhookRow, w: PendingBatch) -> Next {
        self.window = None;
        self.cursor.change_seq = w.change_end;
        self.cursor.event_seq = w.event_end;
        let cursor = self.cursor;
        let skipped = (cursor.change_seq - self.persisted.change_seq)
            + (cursor.event_seq - self.persisted.event_seq);
        if skipped >= SKIP_PERSIST_EVERY {
            if handle
                .queue_webhooks(vec![advance(row, &cursor, None)])
                .is_err()
            {
                return Next::Stop;
            }
            self.persisted = cursor;
        }
        self.subscription.update(|s| {
            s.state = State::Idle;
            s.cursor.change_seq = cursor.change_seq;
            s.cursor.event_seq = cursor.event_seq;
            s.cursor.pending = None;
            s.delivery_id = None;
            s.attempts = 0;
            s.next_attempt_at = None;
        });
        Next::Wait(Wake::Commit { events: row.events })
    }

    /// Cuts the batch that starts at the cursor inside `window`, in a
    /// blocking thread.
    async fn build_batch(
        &self,
        handle: &Arc<WorkspaceService>,
        row: &WebhookRow,
        window: PendingBatch,
    ) -> Result<(PendingBatch, Option<Batch>), String> {
        let (build_handle, build_row, from, max) = (
            handle.clone(),
            row.clone(),
            self.cursor,
            self.settings.batch_max,
        );
        let started = Instant::now();
        let built = with_reader(&self.reader, move |r| {
            build(&build_handle, r, &build_row, &from, &window, max)
        })
        .await;
        metrics::histogram!("sift_webhook_build_seconds").record(started.elapsed().as_secs_f64());
        built
    }

    /// A failed read is noted on the subscription and tried again after a pause.
    fn read_failed(&self, row: &WebhookRow, message: &str) -> Next {
        read_failed(
            &self.subscription,
            row,
            message,
            self.settings.clock.now_ms(),
        );
        Next::Wait(Wake::After(
            self.settings.retry_max.min(Duration::from_secs(5)),
        ))
    }

    /// POSTs `batch` once, unless the workspace closes meanwhile.
    async fn attempt(&mut self, handle: &WorkspaceService, row: &WebhookRow, batch: Batch) -> Next {
        let attempt = self.subscription.status().attempts + 1;
        self.subscription.update(|s| s.attempts = attempt);
        let settings = &self.settings;
        let result = tokio::select! {
            biased;
            _ = self.closed.changed() => return Next::Stop,
            result = post(&self.client, row, &batch, attempt, settings) => result,
        };
        match result {
            Ok(()) => self.delivered(handle, row, &batch),
            Err(error) => self.failed(row, batch, attempt, error),
        }
    }

    /// The endpoint took `batch`: the cursor moves past it.
    fn delivered(&mut self, handle: &WorkspaceService, row: &WebhookRow, batch: &Batch) -> Next {
        metrics::counter!("sift_webhook_deliveries_total", "result" => "ok").increment(1);
        let acked_at = self.settings.clock.now_ms();
        self.cursor.change_seq = batch.end.change_end;
        self.cursor.event_seq = batch.end.event_end;
        let (cursor, window) = (self.cursor, self.window);
        // Queued, not waited for: the next batch of the window goes
        // out at once; the cursor is in the writer's next commit.
        if handle
            .queue_webhooks(vec![advance(row, &cursor, Some(acked_at))])
            .is_err()
        {
            return Next::Stop;
        }
        self.persisted = cursor;
        self.subscription.update(|s| {
            s.cursor = WebhookCursor {
                acked_at: Some(acked_at),
                pending: window,
                ..cursor
            };
            s.state = State::Idle;
            s.delivery_id = None;
            s.attempts = 0;
            s.next_attempt_at = None;
            s.delivered_batches += 1;
            s.delivered_changes += batch.changes;
            s.delivered_events += batch.events;
        });
        Next::Again
    }

    /// The attempt failed: `batch` is kept and tried again after a backoff.
    fn failed(&mut self, row: &WebhookRow, batch: Batch, attempt: u32, error: LastError) -> Next {
        metrics::counter!("sift_webhook_deliveries_total", "result" => "error").increment(1);
        let delay = backoff(attempt, &self.settings);
        let now = self.settings.clock.now_ms();
        tracing::debug!(webhook = %row.id, attempt, message = %error.message, "webhook delivery failed");
        self.subscription.update(|s| {
            s.state = State::Retrying;
            s.next_attempt_at = Some(now + delay.as_millis() as i64);
            s.last_error = Some(error);
        });
        self.batch = Some(batch);
        // A new URL, secret or `enabled` is tried at once.
        Next::Wait(Wake::After(delay))
    }
}
