//! The per-contact event history: every accepted event, compactly, with its
//! properties interned, and the idempotency keys seen so far.
//!
//! Conditions never rescan the history on each event: behavioural nodes read
//! counts and sums kept per contact in [`crate::aggregates`]. The history is
//! read when an aggregate is created (a new segment), when a window boundary
//! or score expiry falls due for one contact, and to explain.

use foldhash::HashSet;
use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use sift_lang::{Condition, DateTime};

use crate::columns::Interner;
use crate::eval::{Check, ValueRef};
use crate::paged::PagedVec;
use crate::value::{RawValue, parse_date, parse_datetime};

/// One property value of an event.
#[derive(Clone, Debug, PartialEq)]
pub enum Prop {
    Str(u32),
    Num(f64),
    Bool(bool),
    Date(i32),
    DateTime(i64),
    /// Interned elements, sorted.
    List(Box<[u32]>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    pub at: DateTime,
    pub kind: u32,
    /// Arrival order across the workspace (it fits in the padding after
    /// `kind`): merging two histories by it gives the order a restore, which
    /// reads events by their stored seq, rebuilds.
    pub arrival: u32,
    /// (property name, value), by name id.
    pub props: Box<[(u32, Prop)]>,
}

#[derive(Clone, Debug, Default)]
pub struct EventLog {
    by_contact: PagedVec<Vec<StoredEvent>>,
    pub types: Interner,
    pub names: Interner,
    pub strings: Interner,
    /// 128-bit hashes of accepted idempotency keys: collisions are out of
    /// reach, and 16 bytes per key beat keeping the strings.
    ids: KeySet,
    len: u64,
    next_arrival: u32,
    /// Every property of every event applied (`push`), whatever memory
    /// keeps of it afterwards (`crate::catalog`).
    pub catalog: crate::catalog::EventCatalog,
}

pub fn id_hash(id: &str) -> u128 {
    let half = |salt: u8| {
        let mut h = DefaultHasher::new();
        salt.hash(&mut h);
        id.hash(&mut h);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

impl EventLog {
    pub fn of(&self, no: u32) -> &[StoredEvent] {
        self.by_contact.get(no as usize).map_or(&[], Vec::as_slice)
    }

    /// An empty log sharing this one's interned names and values, for
    /// interning events read once (a preview over the stored history)
    /// without growing this one.
    pub fn scratch(&self) -> EventLog {
        EventLog {
            types: self.types.clone(),
            names: self.names.clone(),
            strings: self.strings.clone(),
            ..EventLog::default()
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn seen(&self, id: &str) -> bool {
        self.ids.contains(id_hash(id))
    }

    pub fn remember(&mut self, id: &str) {
        self.ids.insert(id_hash(id));
    }

    /// A copy for a checkpoint taken under the write lock: histories and
    /// keys shared page by page and shard by shard, interners without their
    /// lookup index (see [`Interner::copy_without_index`]).
    pub fn copy_for_checkpoint(&self) -> EventLog {
        EventLog {
            by_contact: self.by_contact.clone(),
            types: self.types.copy_without_index(),
            names: self.names.copy_without_index(),
            strings: self.strings.copy_without_index(),
            ids: self.ids.clone(),
            len: self.len,
            next_arrival: self.next_arrival,
            // A checkpoint does not store it: a start counts what it loads.
            catalog: crate::catalog::EventCatalog::default(),
        }
    }

    /// Interns an event and appends it to contact `no`'s history.
    pub fn push(
        &mut self,
        no: u32,
        event_type: &str,
        at: DateTime,
        properties: &[(String, RawValue)],
    ) -> &StoredEvent {
        let arrival = self.next_arrival;
        self.next_arrival = self.next_arrival.wrapping_add(1);
        let event = self.intern(event_type, at, properties, arrival);
        self.catalog.add(&event);
        self.push_stored(no, event)
    }

    /// Appends an event interned by [`EventLog::intern`] to contact `no`'s
    /// history; later pushes arrive after it.
    pub fn push_stored(&mut self, no: u32, event: StoredEvent) -> &StoredEvent {
        let index = no as usize;
        if index >= self.by_contact.len() {
            self.by_contact.resize(index + 1, Vec::new());
        }
        if event.arrival >= self.next_arrival {
            self.next_arrival = event.arrival.wrapping_add(1);
        }
        let list = &mut self.by_contact[index];
        list.push(event);
        self.len += 1;
        &list[list.len() - 1]
    }

    /// Drops the properties `kept` does not keep from contact `no`'s latest
    /// event, once everything that reads a new event has read it.
    pub fn strip_last(&mut self, no: u32, kept: &KeptProps) {
        if let Some(event) = self
            .by_contact
            .get_mut(no as usize)
            .and_then(|list| list.last_mut())
        {
            kept.strip(event);
        }
    }

    /// Drops contact `no`'s events that `keep` refuses (by their `at`);
    /// answers how many went.
    pub fn prune(&mut self, no: u32, keep: impl Fn(DateTime) -> bool) -> u64 {
        let Some(list) = self.by_contact.get_mut(no as usize) else {
            return 0;
        };
        let before = list.len();
        list.retain(|e| keep(e.at));
        if list.is_empty() {
            *list = Vec::new();
        } else if list.capacity() > 2 * list.len() + 4 {
            list.shrink_to_fit();
        }
        let dropped = (before - list.len()) as u64;
        self.len -= dropped;
        dropped
    }

    /// Empties every history (interned strings and idempotency keys stay),
    /// before the recent events are loaded again from the store.
    pub fn clear_histories(&mut self) {
        self.by_contact = PagedVec::new();
        self.len = 0;
    }

    /// An event with its names and values interned, not yet in any history.
    pub fn intern(
        &mut self,
        event_type: &str,
        at: DateTime,
        properties: &[(String, RawValue)],
        arrival: u32,
    ) -> StoredEvent {
        let kind = self.types.intern(event_type);
        let mut props: Vec<(u32, Prop)> = Vec::with_capacity(properties.len());
        for (name, raw) in properties {
            let value = match raw {
                RawValue::Bool(b) => Prop::Bool(*b),
                RawValue::Number(n) if n.is_finite() => Prop::Num(*n),
                RawValue::String(s) => string_prop(s, &mut self.strings),
                RawValue::StringList(items) => {
                    let mut ids: Vec<u32> = items.iter().map(|i| self.strings.intern(i)).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    Prop::List(ids.into_boxed_slice())
                }
                _ => continue,
            };
            let name = self.names.intern(name);
            props.retain(|(n, _)| *n != name);
            props.push((name, value));
        }
        StoredEvent {
            at,
            kind,
            arrival,
            props: props.into_boxed_slice(),
        }
    }

    /// Erases contact `no`'s history (its idempotency keys stay accepted).
    pub fn forget(&mut self, no: u32) {
        if let Some(list) = self.by_contact.get_mut(no as usize) {
            self.len -= list.len() as u64;
            *list = Vec::new();
        }
    }

    /// Moves contact `from`'s history into `into`'s, keeping arrival order.
    pub fn merge(&mut self, from: u32, into: u32) {
        let Some(moved) = self.by_contact.get_mut(from as usize).map(std::mem::take) else {
            return;
        };
        if moved.is_empty() {
            return;
        }
        let index = into as usize;
        if index >= self.by_contact.len() {
            self.by_contact.resize(index + 1, Vec::new());
        }
        let kept = std::mem::take(&mut self.by_contact[index]);
        let mut merged = Vec::with_capacity(kept.len() + moved.len());
        let (mut left, mut right) = (kept.into_iter().peekable(), moved.into_iter().peekable());
        loop {
            let take_left = match (left.peek(), right.peek()) {
                (Some(l), Some(r)) => l.arrival <= r.arrival,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if take_left { left.next() } else { right.next() };
            merged.extend(next);
        }
        self.by_contact[index] = merged;
    }

    /// The histories by contact number, the accepted idempotency keys and
    /// the next arrival number, for a checkpoint (`workspace/checkpoint.rs`).
    pub fn into_parts(self) -> (Vec<Vec<StoredEvent>>, Vec<u128>, u32) {
        (
            self.by_contact.into_vec(),
            self.ids.to_vec(),
            self.next_arrival,
        )
    }

    /// The inverse of [`EventLog::into_parts`], with the interners already
    /// rebuilt in id order.
    pub fn from_parts(
        interners: [Interner; 3],
        by_contact: Vec<Vec<StoredEvent>>,
        ids: Vec<u128>,
        next_arrival: u32,
    ) -> EventLog {
        let [types, names, strings] = interners;
        let len = by_contact.iter().map(|l| l.len() as u64).sum();
        let mut catalog = crate::catalog::EventCatalog::default();
        by_contact
            .iter()
            .flatten()
            .for_each(|event| catalog.add(event));
        EventLog {
            by_contact: PagedVec::from(by_contact),
            types,
            names,
            strings,
            ids: KeySet::from(ids),
            len,
            next_arrival,
            catalog,
        }
    }

    /// Bytes held by the history, roughly, for the benchmark.
    pub fn heap_bytes(&self) -> u64 {
        let events: u64 = self
            .by_contact
            .iter()
            .map(|l| {
                (l.capacity() * std::mem::size_of::<StoredEvent>()) as u64
                    + l.iter()
                        .map(|e| (e.props.len() * std::mem::size_of::<(u32, Prop)>()) as u64)
                        .sum::<u64>()
            })
            .sum();
        events + self.ids.capacity() as u64 * 17
    }
}

/// Accepted idempotency keys, in shards shared copy-on-write like a
/// [`PagedVec`]'s pages: a checkpoint copy takes a reference per shard, and
/// the first key accepted after it copies one shard, not the whole set.
#[derive(Clone, Debug, Default)]
struct KeySet {
    shards: Vec<Arc<HashSet<u128>>>,
}

/// A power of two: ten million keys make shards of about 40,000.
const KEY_SHARDS: usize = 256;

impl KeySet {
    fn shard(key: u128) -> usize {
        (key as usize) & (KEY_SHARDS - 1)
    }

    fn contains(&self, key: u128) -> bool {
        self.shards
            .get(Self::shard(key))
            .is_some_and(|shard| shard.contains(&key))
    }

    fn insert(&mut self, key: u128) {
        if self.shards.is_empty() {
            self.shards = (0..KEY_SHARDS).map(|_| Arc::default()).collect();
        }
        Arc::make_mut(&mut self.shards[Self::shard(key)]).insert(key);
    }

    fn capacity(&self) -> usize {
        self.shards.iter().map(|shard| shard.capacity()).sum()
    }

    fn to_vec(&self) -> Vec<u128> {
        self.shards
            .iter()
            .flat_map(|shard| shard.iter().copied())
            .collect()
    }
}

impl From<Vec<u128>> for KeySet {
    fn from(keys: Vec<u128>) -> Self {
        let mut set = KeySet::default();
        for key in keys {
            set.insert(key);
        }
        set
    }
}

/// A string that is a valid date or RFC 3339 datetime is kept as one, as
/// the condition language reads such literals (docs/conditions.md).
fn string_prop(text: &str, strings: &mut Interner) -> Prop {
    string_prop_kind(text).unwrap_or_else(|| Prop::Str(strings.intern(text)))
}

/// A string property that spells a date or an instant, as one.
fn string_prop_kind(text: &str) -> Option<Prop> {
    let bytes = text.as_bytes();
    if bytes.len() == 10
        && bytes[4] == b'-'
        && let Some(days) = parse_date(text)
    {
        return Some(Prop::Date(days));
    }
    if bytes.len() >= 20
        && bytes[10] == b'T'
        && let Some(ms) = parse_datetime(text)
    {
        return Some(Prop::DateTime(ms));
    }
    None
}

/// Which properties of each event type's events memory keeps, or holds on
/// every event it keeps (events on disk: docs/storage.md "What memory
/// holds"). With a history source, memory keeps of an event only the
/// properties a windowed count or an expiring scoring rule of its type
/// reads: nothing else reads events in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct KeptProps {
    /// Every property of every type, as memory holds them with no history
    /// source.
    everything: bool,
    /// By event type, the property names (sorted); a type left out: none.
    by_kind: BTreeMap<u32, Vec<u32>>,
}

impl Default for KeptProps {
    fn default() -> KeptProps {
        KeptProps::everything()
    }
}

impl KeptProps {
    pub fn everything() -> KeptProps {
        KeptProps {
            everything: true,
            by_kind: BTreeMap::new(),
        }
    }

    pub fn none() -> KeptProps {
        KeptProps {
            everything: false,
            by_kind: BTreeMap::new(),
        }
    }

    /// As a checkpoint stores it: `None` for everything.
    pub fn parts(&self) -> Option<Vec<(u32, Vec<u32>)>> {
        (!self.everything).then(|| {
            self.by_kind
                .iter()
                .map(|(kind, names)| (*kind, names.clone()))
                .collect()
        })
    }

    pub fn from_parts(parts: Option<Vec<(u32, Vec<u32>)>>) -> KeptProps {
        match parts {
            None => KeptProps::everything(),
            Some(list) => {
                let mut kept = KeptProps::none();
                for (kind, names) in list {
                    kept.add(kind, names);
                }
                kept
            }
        }
    }

    /// Keeps `names` of events of type `kind` too.
    pub fn add(&mut self, kind: u32, names: impl IntoIterator<Item = u32>) {
        if self.everything {
            return;
        }
        let list = self.by_kind.entry(kind).or_default();
        list.extend(names);
        list.sort_unstable();
        list.dedup();
    }

    /// Whether every event of type `kind` kept holds `names` when it had them.
    pub fn covers(&self, kind: u32, names: &[u32]) -> bool {
        self.everything
            || names.is_empty()
            || self
                .by_kind
                .get(&kind)
                .is_some_and(|own| names.iter().all(|n| own.binary_search(n).is_ok()))
    }

    /// Whether this keeps everything `other` keeps.
    pub fn covers_all(&self, other: &KeptProps) -> bool {
        if other.everything {
            return self.everything;
        }
        other
            .by_kind
            .iter()
            .all(|(kind, names)| self.covers(*kind, names))
    }

    /// What both keep.
    pub fn intersect(&self, other: &KeptProps) -> KeptProps {
        match (self.everything, other.everything) {
            (true, _) => other.clone(),
            (_, true) => self.clone(),
            _ => {
                let mut both = KeptProps::none();
                for (kind, names) in &self.by_kind {
                    if let Some(theirs) = other.by_kind.get(kind) {
                        let common: Vec<u32> = names
                            .iter()
                            .copied()
                            .filter(|n| theirs.binary_search(n).is_ok())
                            .collect();
                        if !common.is_empty() {
                            both.by_kind.insert(*kind, common);
                        }
                    }
                }
                both
            }
        }
    }

    /// Drops the properties of `event` this does not keep.
    pub fn strip(&self, event: &mut StoredEvent) {
        if self.everything || event.props.is_empty() {
            return;
        }
        let own = self.by_kind.get(&event.kind).map_or(&[][..], Vec::as_slice);
        if event
            .props
            .iter()
            .all(|(n, _)| own.binary_search(n).is_ok())
        {
            return;
        }
        event.props = event
            .props
            .iter()
            .filter(|(n, _)| own.binary_search(n).is_ok())
            .cloned()
            .collect();
    }
}

/// An event filter (`where`) with property names resolved to name ids.
#[derive(Clone, Debug)]
pub enum Filter {
    All(Vec<Filter>),
    Any(Vec<Filter>),
    Not(Box<Filter>),
    /// `None`: a property no event has had yet.
    Test(Option<u32>, Check),
}

impl Filter {
    /// Compiles `cond`; with `names`, unseen property names are interned so
    /// the filter stays valid as new events arrive.
    pub fn compile(cond: &Condition, names: &mut Interner) -> Filter {
        Filter::build(cond, &mut |name| Some(names.intern(name)))
    }

    /// Compiles against the names seen so far (for one-off evaluations).
    pub fn lookup(cond: &Condition, names: &Interner) -> Filter {
        Filter::build(cond, &mut |name| names.lookup(name))
    }

    fn build(cond: &Condition, name: &mut dyn FnMut(&str) -> Option<u32>) -> Filter {
        match cond {
            Condition::All(children) => {
                Filter::All(children.iter().map(|c| Filter::build(c, name)).collect())
            }
            Condition::Any(children) => {
                Filter::Any(children.iter().map(|c| Filter::build(c, name)).collect())
            }
            Condition::Not(inner) => Filter::Not(Box::new(Filter::build(inner, name))),
            Condition::Field {
                field,
                test,
                ignore_case,
            } => Filter::Test(name(field), Check::new(test, *ignore_case)),
            // The checker allows only property predicates inside `where`.
            _ => Filter::All(vec![Filter::Not(Box::new(Filter::All(Vec::new())))]),
        }
    }

    pub fn matches(&self, event: &StoredEvent, strings: &Interner) -> bool {
        self.matches_with(&|name| {
            event
                .props
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| prop_ref(v, strings))
        })
    }

    /// The property names the filter reads (those seen so far).
    pub fn names(&self, out: &mut Vec<u32>) {
        match self {
            Filter::All(children) | Filter::Any(children) => {
                children.iter().for_each(|c| c.names(out))
            }
            Filter::Not(inner) => inner.names(out),
            Filter::Test(name, _) => out.extend(*name),
        }
    }

    /// Whether an event whose property `name` is `value(name)` passes.
    pub fn matches_with<'v>(&self, value: &dyn Fn(u32) -> Option<ValueRef<'v>>) -> bool {
        match self {
            Filter::All(children) => children.iter().all(|c| c.matches_with(value)),
            Filter::Any(children) => children.iter().any(|c| c.matches_with(value)),
            Filter::Not(inner) => !inner.matches_with(value),
            // Relative-time tests are refused inside `where`, so the
            // instant passed here is never read.
            Filter::Test(name, check) => check.holds(name.and_then(value), 0),
        }
    }
}

/// A property as sent, seen as [`EventLog::intern`] would store it: what a
/// filter reads of it (a string that spells a date or an instant is one;
/// a number that is not finite, `null` and nested values are absent).
pub fn raw_value_ref(raw: &RawValue) -> Option<ValueRef<'_>> {
    match raw {
        RawValue::Bool(b) => Some(ValueRef::Bool(*b)),
        RawValue::Number(n) if n.is_finite() => Some(ValueRef::Num(*n)),
        RawValue::String(text) => Some(match string_prop_kind(text) {
            Some(Prop::Date(days)) => ValueRef::Date(days),
            Some(Prop::DateTime(ms)) => ValueRef::DateTime(ms),
            _ => ValueRef::Str(text),
        }),
        RawValue::StringList(items) => Some(ValueRef::Strings(items)),
        _ => None,
    }
}

pub fn prop_ref<'a>(value: &'a Prop, strings: &'a Interner) -> ValueRef<'a> {
    match value {
        Prop::Str(id) => ValueRef::Str(strings.resolve(*id)),
        Prop::Num(n) => ValueRef::Num(*n),
        Prop::Bool(b) => ValueRef::Bool(*b),
        Prop::Date(d) => ValueRef::Date(*d),
        Prop::DateTime(t) => ValueRef::DateTime(*t),
        Prop::List(ids) => ValueRef::Symbols(ids, strings),
    }
}

/// The number of property `name` of `event`, if it is a number.
pub fn number_prop(event: &StoredEvent, name: Option<u32>) -> Option<f64> {
    let name = name?;
    event.props.iter().find_map(|(n, v)| match v {
        Prop::Num(x) if *n == name => Some(*x),
        _ => None,
    })
}
