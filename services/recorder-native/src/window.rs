//! A window being captured: each record read is checked, desensitised and formatted as its
//! capture-file line at once, then spooled per partition (a buffer in memory, flushed in batches
//! to one shared temporary file) until the journeys started in the window are known. The merge
//! then streams the kept lines in timestamp order, each partition's in offset order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;

use base64_simd::{Out, STANDARD as B64};

use crate::tokens::Tokens;
use crate::walk::{Fail, Program, Scratch};

/// What a schema id's records are to the journeys (0: neither).
pub const START: u8 = 1;
pub const END: u8 = 2;

/// The registry's wire format: magic byte 0, a 4-byte schema id, the Avro value.
const HEADER: usize = 5;

pub struct Message<'a> {
    pub timestamp_ms: i64,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub headers: Vec<(&'a str, &'a [u8])>,
    pub value: Option<&'a [u8]>,
}

struct Place {
    topic: String,
    topic_json: String,
    partition: i32,
    tail: Vec<u8>,
    in_tail: usize,
    spans: Vec<(u64, usize)>,
}

pub struct Window {
    pub tokens: Option<Tokens>,
    pub programs: HashMap<u32, (Program, u8)>,
    start_ms: i64,
    end_ms: i64,
    batch: usize,
    file: File,
    file_len: u64,
    places: Vec<Place>,
    started: HashSet<Vec<u8>>,
    ended: HashSet<Vec<u8>>,
    open: usize,
    scratch: Scratch,
    rewritten: Vec<u8>,
}

impl Window {
    pub fn new(
        tokens: Option<Tokens>,
        file: File,
        batch: usize,
        start_ms: i64,
        end_ms: i64,
    ) -> Self {
        Window {
            tokens,
            programs: HashMap::default(),
            start_ms,
            end_ms,
            batch: batch.max(1),
            file,
            file_len: 0,
            places: Vec::new(),
            started: HashSet::default(),
            ended: HashSet::default(),
            open: 0,
            scratch: Scratch::default(),
            rewritten: Vec::with_capacity(1024),
        }
    }

    pub fn started(&self) -> usize {
        self.started.len()
    }

    /// Journeys started in the window and not yet ended.
    pub fn open(&self) -> usize {
        self.open
    }

    /// The next place (topic, partition): places are numbered in the order they are added.
    pub fn add_place(&mut self, topic: &str, partition: i32) {
        self.places.push(Place {
            topic: topic.to_owned(),
            topic_json: json_string(topic),
            partition,
            tail: Vec::new(),
            in_tail: 0,
            spans: Vec::new(),
        });
    }

    /// The schema id of a wire-format value, or why it has none.
    pub fn schema_id(value: Option<&[u8]>) -> Result<u32, String> {
        let value = match value {
            Some(v) if v.len() >= HEADER => v,
            _ => return Err("too short for the wire format (no magic byte and schema id)".into()),
        };
        if value[0] != 0 {
            return Err(format!(
                "magic byte {} is not 0: not the registry's format",
                value[0] as i8
            ));
        }
        Ok(u32::from_be_bytes(
            value[1..HEADER].try_into().expect("4 bytes"),
        ))
    }

    /// One record read from `place`, whose schema (looked up by the caller) is `schema`.
    /// One record read from `place`: `schema` is its schema id (its program is in `programs`),
    /// or why it has none that decodes.
    pub fn add(
        &mut self,
        place: usize,
        msg: &Message,
        schema: Result<u32, String>,
    ) -> std::io::Result<()> {
        let ts = msg.timestamp_ms;
        let in_window = self.start_ms <= ts && ts < self.end_ms;
        let outcome = schema.and_then(|schema_id| {
            let (program, role) = self.programs.get(&schema_id).expect("looked up before");
            let value = msg.value.expect("a schema id was read from it");
            let tokens = self.tokens.as_mut();
            match program.rewrite(
                value,
                HEADER,
                tokens,
                &mut self.scratch,
                &mut self.rewritten,
            ) {
                Ok(rewritten) => Ok((schema_id, *role, rewritten)),
                Err(Fail::Undecodable(reason) | Fail::Desensitise(reason)) => Err(reason),
            }
        });
        if let (Ok((_, role, _)), Some(key)) = (&outcome, msg.key) {
            self.journey(key, *role, in_window);
        }
        let spot = &mut self.places[place];
        let entry = &mut spot.tail;
        entry.push(u8::from(outcome.is_ok()));
        entry.push(u8::from(in_window));
        match msg.key {
            Some(key) => put_bytes(entry, key),
            None => entry.extend_from_slice(&NONE.to_le_bytes()),
        }
        match outcome {
            Err(reason) => put_bytes(entry, reason.as_bytes()),
            Ok((schema_id, _, rewritten)) => {
                let value = if rewritten {
                    &self.rewritten[..]
                } else {
                    msg.value.expect("decoded")
                };
                entry.extend_from_slice(&ts.to_le_bytes());
                entry.extend_from_slice(&schema_id.to_le_bytes());
                let length_at = entry.len();
                entry.extend_from_slice(&[0; 8]);
                format_line(
                    entry,
                    &spot.topic_json,
                    spot.partition,
                    msg,
                    schema_id,
                    value,
                );
                let length = (entry.len() - length_at - 8) as u64;
                entry[length_at..length_at + 8].copy_from_slice(&length.to_le_bytes());
            }
        }
        spot.in_tail += 1;
        if spot.in_tail >= self.batch {
            self.flush(place)?;
        }
        Ok(())
    }

    /// Journeys: a start in the window opens one (by key) unless its end was read already, an
    /// end closes it. A key is nearly always new to the set it goes to: inserted, not looked up
    /// first (an allocation wasted on a repeat, a hash saved on every other).
    fn journey(&mut self, key: &[u8], role: u8, in_window: bool) {
        if role == START && in_window {
            if self.started.insert(key.to_vec()) && !self.ended.contains(key) {
                self.open += 1;
            }
        } else if role == END && self.ended.insert(key.to_vec()) && self.started.contains(key) {
            self.open -= 1;
        }
    }

    fn flush(&mut self, place: usize) -> std::io::Result<()> {
        let spot = &mut self.places[place];
        self.file.write_all_at(&spot.tail, self.file_len)?;
        spot.spans.push((self.file_len, spot.tail.len()));
        self.file_len += spot.tail.len() as u64;
        spot.tail.clear();
        spot.in_tail = 0;
        Ok(())
    }

    /// Stop reading and merge. A first pass over the spools tallies what is kept (`counts`,
    /// `used`, what is left out): the file's head needs it before its lines. `lines()` then
    /// streams the second pass.
    pub fn merge(self, complete_journeys: bool) -> std::io::Result<Merge> {
        let mut merge = Merge {
            window: self,
            readers: Vec::new(),
            heads: Vec::new(),
            heap: BinaryHeap::new(),
            complete_journeys,
            tallying: true,
            error: None,
            counts: HashMap::default(),
            used: HashSet::default(),
            undecodable: HashMap::default(),
            samples: Vec::new(),
        };
        merge.start();
        while merge.step(None) {}
        merge.check()?;
        merge.tallying = false;
        merge.start();
        Ok(merge)
    }
}

pub const MAX_SAMPLES: usize = 5;

struct Reader {
    next_span: usize,
    chunk: Vec<u8>,
    at: usize,
    tail_read: bool,
}

/// The next kept record of a place: its line is `chunk[start..end]` of the place's reader.
struct Head {
    schema_id: u32,
    start: usize,
    end: usize,
}

pub struct Merge {
    window: Window,
    readers: Vec<Reader>,
    heads: Vec<Option<Head>>,
    heap: BinaryHeap<Reverse<(i64, usize)>>,
    complete_journeys: bool,
    tallying: bool,
    error: Option<std::io::Error>,
    pub counts: HashMap<String, u64>,
    pub used: HashSet<u32>,
    pub undecodable: HashMap<String, u64>,
    pub samples: Vec<String>,
}

impl Merge {
    fn start(&mut self) {
        let places = self.window.places.len();
        self.readers = (0..places)
            .map(|_| Reader {
                next_span: 0,
                chunk: Vec::new(),
                at: 0,
                tail_read: false,
            })
            .collect();
        self.heads = (0..places).map(|_| None).collect();
        self.heap.clear();
        for i in 0..places {
            self.advance(i);
        }
    }

    fn check(&mut self) -> std::io::Result<()> {
        self.error.take().map_or(Ok(()), Err)
    }

    /// The next kept record, in order: its line appended to `out` (if given). False at the end.
    fn step(&mut self, out: Option<&mut Vec<u8>>) -> bool {
        let Some(Reverse((_, i))) = self.heap.pop() else {
            return false;
        };
        let head = self.heads[i]
            .take()
            .expect("a place in the heap has a head");
        if let Some(out) = out {
            out.extend_from_slice(&self.readers[i].chunk[head.start..head.end]);
        }
        if self.tallying {
            *self
                .counts
                .entry(self.window.places[i].topic.clone())
                .or_default() += 1;
            self.used.insert(head.schema_id);
        }
        self.advance(i);
        true
    }

    /// The next kept records' lines, in order, until about `max_bytes` are gathered (empty at
    /// the end).
    pub fn lines(&mut self, max_bytes: usize) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(max_bytes + 2048);
        while out.len() < max_bytes && self.step(Some(&mut out)) {}
        self.check()?;
        Ok(out)
    }

    /// Read place `i` up to its next kept record (tallying the undecodable ones it keeps).
    fn advance(&mut self, i: usize) {
        loop {
            let place = &self.window.places[i];
            let reader = &mut self.readers[i];
            while reader.at >= reader.chunk.len() {
                if reader.next_span < place.spans.len() {
                    let (position, length) = place.spans[reader.next_span];
                    reader.next_span += 1;
                    reader.chunk.resize(length, 0);
                    if let Err(err) = self.window.file.read_exact_at(&mut reader.chunk, position) {
                        self.error.get_or_insert(err);
                        return;
                    }
                } else if !reader.tail_read {
                    reader.tail_read = true;
                    reader.chunk.clear();
                    reader.chunk.extend_from_slice(&place.tail);
                } else {
                    return;
                }
                reader.at = 0;
            }
            let chunk = &reader.chunk;
            let mut at = reader.at;
            let decoded = chunk[at] == 1;
            let in_window = chunk[at + 1] == 1;
            at += 2;
            let key = take_bytes(chunk, &mut at);
            let kept = in_window
                || (self.complete_journeys && key.is_some_and(|k| self.window.started.contains(k)));
            if !decoded {
                let reason = take_bytes(chunk, &mut at).unwrap_or_default();
                if kept && self.tallying {
                    *self.undecodable.entry(place.topic.clone()).or_default() += 1;
                    if self.samples.len() < MAX_SAMPLES {
                        let reason = String::from_utf8_lossy(reason);
                        self.samples.push(format!("{}: {reason}", place.topic));
                    }
                }
                reader.at = at;
                continue;
            }
            let ts = i64::from_le_bytes(chunk[at..at + 8].try_into().expect("8 bytes"));
            let schema_id = u32::from_le_bytes(chunk[at + 8..at + 12].try_into().expect("4 bytes"));
            at += 12;
            let length =
                u64::from_le_bytes(chunk[at..at + 8].try_into().expect("8 bytes")) as usize;
            at += 8;
            reader.at = at + length;
            if kept {
                self.heads[i] = Some(Head {
                    schema_id,
                    start: at,
                    end: at + length,
                });
                self.heap.push(Reverse((ts, i)));
                return;
            }
        }
    }
}

/// A length that says "none" (a record without a key).
const NONE: u64 = u64::MAX;

fn put_bytes(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(data);
}

fn take_bytes<'a>(chunk: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let len = u64::from_le_bytes(chunk[*at..*at + 8].try_into().expect("8 bytes"));
    *at += 8;
    if len == NONE {
        return None;
    }
    let data = &chunk[*at..*at + len as usize];
    *at += len as usize;
    Some(data)
}

/// `CapturedRecord.line()`: `{"record": ...}` as json.dumps writes it (sorted keys, compact).
fn format_line(
    out: &mut Vec<u8>,
    topic_json: &str,
    partition: i32,
    msg: &Message,
    schema_id: u32,
    value: &[u8],
) {
    out.extend_from_slice(b"{\"record\":{\"headers\":[");
    for (n, (name, data)) in msg.headers.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.push(b'[');
        write_json_string(out, name);
        out.extend_from_slice(b",\"");
        b64(out, data);
        out.extend_from_slice(b"\"]");
    }
    out.extend_from_slice(b"],\"key\":");
    match msg.key {
        None => out.extend_from_slice(b"null"),
        Some(key) => {
            out.push(b'"');
            b64(out, key);
            out.push(b'"');
        }
    }
    out.extend_from_slice(b",\"offset\":");
    number(out, msg.offset);
    out.extend_from_slice(b",\"partition\":");
    number(out, partition);
    out.extend_from_slice(b",\"schema_id\":");
    number(out, schema_id);
    out.extend_from_slice(b",\"timestamp_ms\":");
    number(out, msg.timestamp_ms);
    out.extend_from_slice(b",\"topic\":");
    out.extend_from_slice(topic_json.as_bytes());
    out.extend_from_slice(b",\"value\":\"");
    b64(out, value);
    out.extend_from_slice(b"\"}}\n");
}

fn write_json_string(out: &mut Vec<u8>, text: &str) {
    if text
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
    {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(json_string(text).as_bytes());
    }
}

fn b64(out: &mut Vec<u8>, data: &[u8]) {
    let start = out.len();
    out.resize(start + B64.encoded_length(data.len()), 0);
    let written = B64.encode(data, Out::from_slice(&mut out[start..])).len();
    debug_assert_eq!(start + written, out.len());
}

fn number(out: &mut Vec<u8>, value: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// `json.dumps(text)`: ASCII only, as Python's default `ensure_ascii` writes it.
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}
