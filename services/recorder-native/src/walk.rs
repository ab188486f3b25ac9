//! Walk an Avro value in its binary encoding: public values are checked and their bytes kept,
//! personal ones are read, tokenised and written in their place. The schema arrives compiled
//! by golive_cli.recorder.rewrite into `Op`s (which fields are personal, names resolved), so
//! no schema rule lives here, only the encoding.

use crate::tokens::{
    format_uuid, parse_canonical_uuid, parse_uuid, put_framed, write_long, Tokens,
};

pub enum Op {
    /// boolean, float, double, or a public fixed: a known width.
    Skip(usize),
    /// A public int or long.
    Varint,
    /// Public length-prefixed values: a string (UTF-8 checked), a uuid string, bytes.
    Str,
    Uuid,
    Bytes,
    Enum(i128),
    Union(Vec<Vec<Op>>),
    Array(Vec<Op>),
    /// A map: its key (`Str` or `TokenString`), then its value.
    Map(Box<Op>, Vec<Op>),
    /// A record type, by its index in `Program::records` (a record may contain itself).
    Record(usize),
    TokenString,
    TokenUuid,
    TokenInt,
    TokenLong,
    TokenBytes,
    TokenFixed(usize),
    /// A personal value that cannot be tokenised (an enum, a timestamp): the record is refused.
    Refuse(String),
}

/// Calls `visit` on every op in `ops` and in the ops nested inside them (union branches, items,
/// map keys and values); not into the record types `Op::Record` refers to.
pub fn each_op(ops: &[Op], visit: &mut impl FnMut(&Op)) {
    for op in ops {
        visit(op);
        match op {
            Op::Union(branches) => branches.iter().for_each(|branch| each_op(branch, visit)),
            Op::Array(item) => each_op(item, visit),
            Op::Map(key, value) => {
                each_op(std::slice::from_ref(key.as_ref()), visit);
                each_op(value, visit);
            }
            _ => {}
        }
    }
}

pub struct Program {
    pub root: Vec<Op>,
    pub records: Vec<Vec<Op>>,
}

pub enum Fail {
    Undecodable(String),
    Desensitise(String),
}

type Step = Result<(), Fail>;

fn undecodable<T>(message: impl Into<String>) -> Result<T, Fail> {
    Err(Fail::Undecodable(message.into()))
}

const RAN_OFF: &str = "does not decode: ends inside a value";

/// Buffers a walk reuses from record to record: the edits (the span of each personal value,
/// and the span of its token in `fresh`) and the tokens' bytes.
#[derive(Default)]
pub struct Scratch {
    edits: Vec<(usize, usize, usize, usize)>,
    fresh: Vec<u8>,
}

struct Walker<'a> {
    buf: &'a [u8],
    p: usize,
    program: &'a Program,
    tokens: Option<&'a mut Tokens>,
    scratch: &'a mut Scratch,
    /// Records nested inside each other here: only a record can contain itself, so only
    /// records can nest without end.
    depth: usize,
    /// Ops left before the record counts as hostile (see STEPS_PER_BYTE).
    steps: usize,
}

/// Records nested deeper than this make a record undecodable: a recursive schema lets every byte
/// of a record nest one level further, and the walk recurses (the old Python walker, a call per
/// record, hit its recursion limit, 1,000, there too).
pub const MAX_DEPTH: usize = 1000;
/// Ops a record may take per byte, beyond a base: items of no width (nulls, empty records)
/// cost no bytes, so a small record could otherwise ask for billions of them.
const STEPS_PER_BYTE: usize = 64;
const STEPS_BASE: usize = 65_536;

impl Program {
    /// Walk `value` from `start`. With tokens: true, and `out` holds the value with every
    /// personal value replaced, ending where the record ends. Without: false once the record
    /// is checked (it is kept as it is, trailing bytes included, as a consumer reads it).
    pub fn rewrite(
        &self,
        value: &[u8],
        start: usize,
        tokens: Option<&mut Tokens>,
        scratch: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> Result<bool, Fail> {
        let desensitise = tokens.is_some();
        scratch.edits.clear();
        scratch.fresh.clear();
        let mut walker = Walker {
            buf: value,
            p: start,
            program: self,
            tokens,
            scratch,
            depth: 0,
            steps: STEPS_BASE + STEPS_PER_BYTE * value.len(),
        };
        walker.seq(&self.root)?;
        if !desensitise {
            return Ok(false);
        }
        let end = walker.p;
        out.clear();
        let mut last = 0;
        for &(at, until, from, to) in &scratch.edits {
            out.extend_from_slice(&value[last..at]);
            out.extend_from_slice(&scratch.fresh[from..to]);
            last = until;
        }
        out.extend_from_slice(&value[last..end]);
        Ok(true)
    }
}

impl<'a> Walker<'a> {
    fn seq(&mut self, ops: &[Op]) -> Step {
        for op in ops {
            self.op(op)?;
        }
        Ok(())
    }

    /// A record's `ops`, one level deeper.
    fn nested(&mut self, ops: &[Op]) -> Step {
        if self.depth >= MAX_DEPTH {
            return undecodable(format!("values nested more than {MAX_DEPTH} deep"));
        }
        self.depth += 1;
        let walked = self.seq(ops);
        self.depth -= 1;
        walked
    }

    fn byte(&mut self) -> Result<u8, Fail> {
        let Some(&b) = self.buf.get(self.p) else {
            return undecodable(RAN_OFF);
        };
        self.p += 1;
        Ok(b)
    }

    /// Avro's zig-zag varint, at most ten bytes (Python's read_long).
    fn long(&mut self) -> Result<i128, Fail> {
        let mut byte = self.byte()?;
        let mut n = u128::from(byte & 0x7f);
        let mut shift = 7;
        while byte & 0x80 != 0 {
            if shift > 63 {
                return undecodable("a number longer than ten bytes");
            }
            byte = self.byte()?;
            n |= u128::from(byte & 0x7f) << shift;
            shift += 7;
        }
        Ok(((n >> 1) as i128) ^ -((n & 1) as i128))
    }

    /// A length-prefixed value: (start of its bytes, end).
    fn span(&mut self) -> Result<(usize, usize), Fail> {
        let n = self.long()?;
        let left = (self.buf.len() - self.p) as i128;
        if n < 0 || n > left {
            return undecodable(format!("a length of {n} runs past the record"));
        }
        let start = self.p;
        self.p += n as usize;
        Ok((start, self.p))
    }

    fn text(&self, start: usize, end: usize) -> Result<&'a str, Fail> {
        let buf: &'a [u8] = self.buf;
        std::str::from_utf8(&buf[start..end])
            .or_else(|e| undecodable(format!("does not decode: not utf-8 ({e})")))
    }

    fn uuid(&self, start: usize, end: usize) -> Result<[u8; 16], Fail> {
        if let Some(found) = parse_canonical_uuid(&self.buf[start..end]) {
            return Ok(found);
        }
        let text = self.text(start, end)?;
        parse_uuid(text).map_or_else(|| undecodable(format!("badly formed uuid {text:?}")), Ok)
    }

    fn skip(&mut self, width: usize) -> Step {
        if self.buf.len() - self.p < width {
            return undecodable(RAN_OFF);
        }
        self.p += width;
        Ok(())
    }

    /// Replace buf[at..until] by what `write` appends to the fresh bytes.
    fn edit(&mut self, at: usize, until: usize, write: impl FnOnce(&mut Tokens, &mut Vec<u8>)) {
        let tokens = self
            .tokens
            .as_deref_mut()
            .expect("personal ops are compiled only with a key");
        let from = self.scratch.fresh.len();
        write(tokens, &mut self.scratch.fresh);
        self.scratch
            .edits
            .push((at, until, from, self.scratch.fresh.len()));
    }

    /// One more value walked (an op, or an item of an array or map, which may have none).
    fn step(&mut self) -> Step {
        match self.steps.checked_sub(1) {
            Some(left) => {
                self.steps = left;
                Ok(())
            }
            None => undecodable("more values than a record of its size can hold"),
        }
    }

    fn op(&mut self, op: &Op) -> Step {
        self.step()?;
        match op {
            Op::Skip(width) => self.skip(*width)?,
            Op::Varint => while self.byte()? & 0x80 != 0 {},
            Op::Str => {
                let (s, e) = self.span()?;
                self.text(s, e)?;
            }
            Op::Uuid => {
                let (s, e) = self.span()?;
                self.uuid(s, e)?;
            }
            Op::Bytes => {
                self.span()?;
            }
            Op::Enum(count) => {
                let n = self.long()?;
                if !(0..*count).contains(&n) {
                    return undecodable(format!("enum symbol {n} of {count}"));
                }
            }
            Op::Union(branches) => {
                let n = self.long()?;
                let Some(branch) = usize::try_from(n).ok().and_then(|i| branches.get(i)) else {
                    return undecodable(format!("union branch {n} of {}", branches.len()));
                };
                self.seq(branch)?;
            }
            Op::Array(item) => self.blocks(None, item)?,
            Op::Map(key, value) => self.blocks(Some(key), value)?,
            Op::Record(index) => {
                let program = self.program;
                self.nested(&program.records[*index])?;
            }
            Op::TokenString => {
                let at = self.p;
                let (s, e) = self.span()?;
                let text = self.text(s, e)?;
                let raw = &self.buf[s..e];
                self.edit(at, e, |tokens, out| tokens.string_framed(raw, text, out));
            }
            Op::TokenUuid => {
                let at = self.p;
                let (s, e) = self.span()?;
                let value = self.uuid(s, e)?;
                self.edit(at, e, |tokens, out| {
                    put_framed(out, format_uuid(&tokens.uuid(&value)).as_bytes());
                });
            }
            Op::TokenInt | Op::TokenLong => {
                let at = self.p;
                let n = self.long()?;
                let bits = if matches!(op, Op::TokenInt) { 31 } else { 63 };
                self.edit(at, self.p, |tokens, out| {
                    write_long(tokens.integer(n, bits), out)
                });
            }
            Op::TokenBytes => {
                let at = self.p;
                let (s, e) = self.span()?;
                let raw = &self.buf[s..e];
                self.edit(at, e, |tokens, out| put_framed(out, &tokens.digest(raw)));
            }
            Op::TokenFixed(width) => {
                let at = self.p;
                self.skip(*width)?;
                let raw = &self.buf[at..self.p];
                self.edit(at, self.p, |tokens, out| {
                    out.extend_from_slice(&tokens.digest(raw)[..(*width).min(32)]);
                });
            }
            Op::Refuse(reason) => return Err(Fail::Desensitise(reason.clone())),
        }
        Ok(())
    }

    /// Arrays and maps: blocks of items; a negative count is followed by the block's size in
    /// bytes. Desensitised items may change size, so such a block is rewritten with its count
    /// made positive and no size (as fastavro writes every block): readers that skip a block by
    /// its size must not skip by the size of the original.
    fn blocks(&mut self, key: Option<&Op>, item: &[Op]) -> Step {
        loop {
            let at = self.p;
            let mut count = self.long()?;
            if count == 0 {
                break;
            }
            if count < 0 {
                count = -count;
                self.long()?;
                if self.tokens.is_some() {
                    self.edit(at, self.p, |_, out| write_long(count, out));
                }
            }
            let limit = self.buf.len() as i128;
            if count > limit {
                return undecodable(format!("block of items {count} of {limit}"));
            }
            for _ in 0..count {
                self.step()?;
                if let Some(key) = key {
                    self.op(key)?;
                }
                self.seq(item)?;
            }
        }
        Ok(())
    }
}
