//! A workspace's logs in JetStream (docs/cluster.md "Writes", "The change
//! log"): each partition's input, in which its owner records every write
//! before applying it, and the workspace's one change log, whose stream
//! sequence is the change `seq` clients see.
//!
//! Both are fenced by JetStream itself: a message is stored only if the
//! last one on its subject is the one the publisher expects
//! (`Nats-Expected-Last-Subject-Sequence`), so a node that lost its lease
//! and has not noticed cannot write after the new owner did.

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::stream::{Config, LastRawMessageErrorKind, Stream};
use async_nats::jetstream::{self, consumer};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;

use crate::ClusterError;

/// Why an append was refused.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Another writer appended to the partition since the last sequence
    /// this one knows: it is no longer the owner.
    #[error("another node wrote to partition {0} (this node no longer owns it)")]
    Fenced(u16),
    /// JetStream did not store it (no quorum, timed out).
    #[error("JetStream did not store the message: {0}")]
    Unavailable(String),
}

/// The header carrying a change's number within its partition.
const CHANGE_HEADER: &str = "Sift-Change";

async fn stream(
    js: &jetstream::Context,
    name: String,
    subjects: String,
    replicas: usize,
) -> Result<Stream, ClusterError> {
    js.get_or_create_stream(Config {
        name: name.clone(),
        subjects: vec![subjects],
        num_replicas: replicas,
        allow_direct: true,
        ..Default::default()
    })
    .await
    .map_err(|e| ClusterError::JetStream {
        what: format!("the stream {name}"),
        message: e.to_string(),
    })
}

/// The stream sequence of the last message on `subject` (0: none) and its
/// headers.
async fn last_on(stream: &Stream, subject: &str) -> Result<(u64, HeaderMap), ClusterError> {
    match stream.get_last_raw_message_by_subject(subject).await {
        Ok(message) => Ok((message.sequence, message.headers)),
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok((0, HeaderMap::new())),
        Err(e) => Err(ClusterError::JetStream {
            what: format!("the last message on {subject}"),
            message: e.to_string(),
        }),
    }
}

/// How long an append is retried while JetStream cannot answer (a NATS
/// node lost: the client moving to another, a stream electing a leader).
const APPEND_PATIENCE: Duration = Duration::from_secs(10);

/// A writer's id, unique to this process and call site's log: part of each
/// message id, so that a retried append is stored once and another
/// writer's append at the same place is never mistaken for this one's.
fn writer_nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// Publishes `payload` on `subject` if the last message there is
/// `expected` (0: none); answers its stream sequence. Retried for a while
/// when JetStream does not answer, under one message id, so that an
/// append stored but not acknowledged is not stored twice.
async fn append_on(
    js: &jetstream::Context,
    writer: &str,
    partition: u16,
    subject: String,
    expected: u64,
    mut headers: HeaderMap,
    payload: Bytes,
) -> Result<u64, AppendError> {
    headers.insert(
        "Nats-Expected-Last-Subject-Sequence",
        expected.to_string().as_str(),
    );
    headers.insert(
        "Nats-Msg-Id",
        format!("{subject}:{expected}:{writer}").as_str(),
    );
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        let attempt = match js
            .publish_with_headers(subject.clone(), headers.clone(), payload.clone())
            .await
        {
            Ok(ack) => ack.await,
            Err(e) => {
                return Err(AppendError::Unavailable(e.to_string()));
            }
        };
        match attempt {
            Ok(ack) => return Ok(ack.sequence),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                return Err(AppendError::Fenced(partition));
            }
            Err(e) if started.elapsed() >= APPEND_PATIENCE => {
                return Err(AppendError::Unavailable(e.to_string()));
            }
            Err(_) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
        }
    }
}

/// The input streams of a workspace's partitions: stream
/// `SIFT_IN_<workspace>`, subject `sift.<workspace>.in.<partition>`.
pub struct PartitionLog {
    js: jetstream::Context,
    stream: Stream,
    workspace: String,
    writer: String,
}

impl PartitionLog {
    /// Opens the workspace's input stream, creating it with `replicas`
    /// copies when missing. It keeps every message: it is each
    /// partition's log, replayed after the partition's checkpoint.
    pub async fn open(
        js: jetstream::Context,
        workspace: &str,
        replicas: usize,
    ) -> Result<PartitionLog, ClusterError> {
        let stream = stream(
            &js,
            format!("SIFT_IN_{workspace}"),
            format!("sift.{workspace}.in.*"),
            replicas,
        )
        .await?;
        Ok(PartitionLog {
            js,
            stream,
            workspace: workspace.to_string(),
            writer: writer_nonce(),
        })
    }

    fn subject(&self, partition: u16) -> String {
        format!("sift.{}.in.{partition}", self.workspace)
    }

    /// The stream sequence of the partition's last input (0: none yet).
    pub async fn last(&self, partition: u16) -> Result<u64, ClusterError> {
        Ok(last_on(&self.stream, &self.subject(partition)).await?.0)
    }

    /// Appends an input to the partition if its last input is `expected`
    /// (the owner's view); answers its stream sequence once a quorum of
    /// JetStream nodes stored it.
    pub async fn append(
        &self,
        partition: u16,
        expected: u64,
        payload: Bytes,
    ) -> Result<u64, AppendError> {
        self.append_with(partition, expected, HeaderMap::new(), payload)
            .await
    }

    /// [`append`](Self::append) with headers of the caller's beside the
    /// payload (what the input is, for whoever replays it).
    pub async fn append_with(
        &self,
        partition: u16,
        expected: u64,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<u64, AppendError> {
        append_on(
            &self.js,
            &self.writer,
            partition,
            self.subject(partition),
            expected,
            headers,
            payload,
        )
        .await
    }

    /// Sends an append without waiting for JetStream's answer, so that
    /// the next can be sent before this one is confirmed (appends sent on
    /// one connection are stored in the order sent). `position` is where
    /// the writer expects it to land, the previous append's sequence: when
    /// `fenced`, JetStream stores it only if that is the subject's last
    /// sequence. JetStream cannot check that for an append sent while an
    /// earlier one is still in flight, so the writer sends those unfenced
    /// and checks their confirmed sequences follow each other with no gap
    /// (no other writer's append between them). Not retried: an append
    /// whose answer does not come is an error, after which only a replay
    /// of the log tells what is stored.
    pub async fn send(
        &self,
        partition: u16,
        position: u64,
        fenced: bool,
        mut headers: HeaderMap,
        payload: Bytes,
    ) -> Result<PendingAppend, AppendError> {
        let subject = self.subject(partition);
        if fenced {
            headers.insert(
                "Nats-Expected-Last-Subject-Sequence",
                position.to_string().as_str(),
            );
        }
        headers.insert(
            "Nats-Msg-Id",
            format!("{subject}:{position}:{}", self.writer).as_str(),
        );
        let ack = self
            .js
            .publish_with_headers(subject, headers, payload)
            .await
            .map_err(|e| AppendError::Unavailable(e.to_string()))?;
        Ok(PendingAppend { ack, partition })
    }

    /// [`replay`](Self::replay) handing each input's headers too.
    pub async fn replay_with(
        &self,
        partition: u16,
        after: u64,
        visit: &mut (dyn FnMut(u64, &HeaderMap, Bytes) + Send),
    ) -> Result<u64, ClusterError> {
        let subject = self.subject(partition);
        let (last, _) = last_on(&self.stream, &subject).await?;
        read_range(&self.stream, &subject, after, last, &mut |read| {
            visit(read.seq, read.headers, read.payload)
        })
        .await
    }

    /// Deletes the inputs before stream sequence `keep_from` (a
    /// checkpoint covers them), so that the log does not grow forever.
    pub async fn forget_before(&self, keep_from: u64) -> Result<(), ClusterError> {
        self.stream
            .purge()
            .sequence(keep_from)
            .await
            .map_err(|e| ClusterError::JetStream {
                what: "a purge of the input log".into(),
                message: e.to_string(),
            })?;
        Ok(())
    }

    /// Calls `visit` with each input of the partition after stream
    /// sequence `after` (a checkpoint's), in order, up to the last stored
    /// when the replay began; answers the last sequence visited.
    pub async fn replay(
        &self,
        partition: u16,
        after: u64,
        visit: &mut (dyn FnMut(u64, Bytes) + Send),
    ) -> Result<u64, ClusterError> {
        let subject = self.subject(partition);
        let (last, _) = last_on(&self.stream, &subject).await?;
        read_range(&self.stream, &subject, after, last, &mut |read| {
            visit(read.seq, read.payload)
        })
        .await
    }
}

/// An append sent by [`PartitionLog::send`], not yet confirmed.
pub struct PendingAppend {
    ack: jetstream::context::PublishAckFuture,
    partition: u16,
}

impl PendingAppend {
    /// Its stream sequence once a quorum stored it.
    pub async fn confirmed(self) -> Result<u64, AppendError> {
        match self.ack.await {
            Ok(ack) => Ok(ack.sequence),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                Err(AppendError::Fenced(self.partition))
            }
            // The ack path reports a refused expectation as an API error.
            Err(e) if e.to_string().contains("wrong last sequence") => {
                Err(AppendError::Fenced(self.partition))
            }
            Err(e) => Err(AppendError::Unavailable(e.to_string())),
        }
    }
}

/// One change as the change log holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedChange {
    /// The workspace-wide `seq`: the stream sequence, gapless from 1.
    pub seq: u64,
    pub partition: u16,
    /// Its number within its partition, from 1.
    pub number: u64,
    pub payload: Bytes,
}

/// A workspace's change log: stream `SIFT_CHANGES_<workspace>`, subject
/// `sift.<workspace>.changes.<partition>`, each message one change with
/// its number within its partition in the `Sift-Change` header.
#[derive(Clone)]
pub struct ChangeLog {
    js: jetstream::Context,
    stream: Stream,
    workspace: String,
}

impl ChangeLog {
    pub async fn open(
        js: jetstream::Context,
        workspace: &str,
        replicas: usize,
    ) -> Result<ChangeLog, ClusterError> {
        let stream = stream(
            &js,
            format!("SIFT_CHANGES_{workspace}"),
            format!("sift.{workspace}.changes.*"),
            replicas,
        )
        .await?;
        Ok(ChangeLog {
            js,
            stream,
            workspace: workspace.to_string(),
        })
    }

    fn subject(&self, partition: u16) -> String {
        format!("sift.{}.changes.{partition}", self.workspace)
    }

    /// Reads the changes after workspace `seq` `after`, at most `limit`,
    /// in order.
    pub async fn read(&self, after: u64, limit: usize) -> Result<Vec<LoggedChange>, ClusterError> {
        let subject = format!("sift.{}.changes.*", self.workspace);
        let mut out = Vec::new();
        let mut stream = self.stream.clone();
        let last = stream
            .info()
            .await
            .map_err(|e| ClusterError::JetStream {
                what: "the change log's state".into(),
                message: e.to_string(),
            })?
            .state
            .last_sequence;
        if last <= after || limit == 0 {
            return Ok(out);
        }
        let upto = last.min(after + limit as u64);
        let mut failed = None;
        read_range(
            &self.stream,
            &subject,
            after,
            upto,
            &mut |read| match change_of(read.seq, read.subject, read.headers, read.payload) {
                Ok(change) => out.push(change),
                Err(e) => failed = Some(e),
            },
        )
        .await?;
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

fn change_of(
    seq: u64,
    subject: &str,
    headers: &HeaderMap,
    payload: Bytes,
) -> Result<LoggedChange, ClusterError> {
    let corrupt = |what: &str| ClusterError::JetStream {
        what: format!("change {seq}"),
        message: what.to_string(),
    };
    let number = headers
        .get(CHANGE_HEADER)
        .and_then(|v| v.as_str().parse::<u64>().ok())
        .ok_or_else(|| corrupt("no Sift-Change header"))?;
    let partition = subject
        .rsplit('.')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(|| corrupt("a subject without its partition"))?;
    Ok(LoggedChange {
        seq,
        partition,
        number,
        payload,
    })
}

/// A message read back: its stream sequence, subject, headers, payload.
struct Read<'m> {
    seq: u64,
    subject: &'m str,
    headers: &'m HeaderMap,
    payload: Bytes,
}

/// Calls `visit` with each message on `filter` after stream sequence
/// `after`, in order, through stream sequence `upto` (the caller read it
/// from the stream: messages stored later are left for the next read);
/// answers the last sequence visited (`after` when none).
async fn read_range(
    stream: &Stream,
    filter: &str,
    after: u64,
    upto: u64,
    visit: &mut (dyn FnMut(Read<'_>) + Send),
) -> Result<u64, ClusterError> {
    let failed = |e: String| ClusterError::JetStream {
        what: format!("a read of {filter}"),
        message: e,
    };
    if upto <= after {
        return Ok(after);
    }
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: filter.to_string(),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| failed(e.to_string()))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| failed(e.to_string()))?;
    let mut seen = after;
    while seen < upto {
        let Some(message) = messages.next().await else {
            return Err(failed("the consumer ended early".into()));
        };
        let message = message.map_err(|e| failed(e.to_string()))?;
        let seq = message
            .info()
            .map_err(|e| failed(e.to_string()))?
            .stream_sequence;
        // An ordered consumer that recreates itself may hand a message
        // again: each is visited once.
        if seq <= seen {
            continue;
        }
        if seq > upto {
            break;
        }
        let headers = message.headers.clone().unwrap_or_default();
        visit(Read {
            seq,
            subject: message.subject.as_str(),
            headers: &headers,
            payload: message.payload.clone(),
        });
        seen = seq;
    }
    Ok(seen)
}

/// One partition's side of the change log, for its owner: publishes the
/// partition's changes in order, each exactly once even when a new owner
/// replays the partition and produces its changes again.
pub struct ChangePublisher {
    log: ChangeLog,
    writer: String,
    partition: u16,
    /// The stream sequence of the partition's last change (0: none).
    last_seq: u64,
    /// The number of the partition's last change published (0: none).
    last_number: u64,
}

impl ChangePublisher {
    /// Resumes after the partition's last published change (what an owner
    /// taking the partition over does first).
    pub async fn resume(log: ChangeLog, partition: u16) -> Result<ChangePublisher, ClusterError> {
        let (last_seq, headers) = last_on(&log.stream, &log.subject(partition)).await?;
        let last_number = if last_seq == 0 {
            0
        } else {
            change_of(last_seq, &log.subject(partition), &headers, Bytes::new())?.number
        };
        Ok(ChangePublisher {
            log,
            writer: writer_nonce(),
            partition,
            last_seq,
            last_number,
        })
    }

    /// The number of the last change the log holds for this partition.
    pub fn last_number(&self) -> u64 {
        self.last_number
    }

    /// Publishes the partition's change `number` (numbers come in order
    /// from 1): skipped when the log already holds it (a replay after a
    /// takeover); answers its workspace `seq` when published now.
    pub async fn publish(
        &mut self,
        number: u64,
        payload: Bytes,
    ) -> Result<Option<u64>, AppendError> {
        if number <= self.last_number {
            return Ok(None);
        }
        if number != self.last_number + 1 {
            return Err(AppendError::Unavailable(format!(
                "change {number} of partition {} follows {}: changes must come in order",
                self.partition, self.last_number
            )));
        }
        let mut headers = HeaderMap::new();
        headers.insert(CHANGE_HEADER, number.to_string().as_str());
        let seq = append_on(
            &self.log.js,
            &self.writer,
            self.partition,
            self.log.subject(self.partition),
            self.last_seq,
            headers,
            payload,
        )
        .await?;
        self.last_seq = seq;
        self.last_number = number;
        Ok(Some(seq))
    }
}
