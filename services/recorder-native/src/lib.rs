//! golive capture's per-record work, native: the Python side (golive_cli.recorder) reads Kafka,
//! asks the registry, compiles schemas and writes the file; this module walks, desensitises,
//! formats, spools and merges every record in between. See docs/recorder.md.

mod reader;
mod tokens;
mod walk;
mod window;

use std::fs::File;
use std::os::fd::BorrowedFd;

use pyo3::create_exception;
use pyo3::exceptions::{PyOverflowError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PySet, PyString, PyTuple};
use rustc_hash::FxHashMap;

use tokens::Tokens;
use walk::{Fail, Op, Program};

create_exception!(
    golive_recorder_native,
    UndecodableError,
    PyValueError,
    "The bytes are not a value of the writer schema."
);
create_exception!(
    golive_recorder_native,
    DesensitiseError,
    PyValueError,
    "A personal field this build cannot tokenise safely: the record is left out, not leaked."
);

fn op(item: &Bound<'_, PyAny>) -> PyResult<Op> {
    let tuple = item.cast::<PyTuple>()?;
    let tag: String = tuple.get_item(0)?.extract()?;
    let arg = |i: usize| tuple.get_item(i);
    Ok(match tag.as_str() {
        "skip" => Op::Skip(arg(1)?.extract()?),
        "varint" => Op::Varint,
        "string" => Op::Str,
        "uuid" => Op::Uuid,
        "bytes" => Op::Bytes,
        "enum" => Op::Enum(arg(1)?.extract::<i64>()?.into()),
        "union" => Op::Union(
            arg(1)?
                .try_iter()?
                .map(|b| ops(&b?))
                .collect::<PyResult<_>>()?,
        ),
        "array" => Op::Array(ops(&arg(1)?)?),
        "map" => Op::Map(Box::new(op(&arg(1)?)?), ops(&arg(2)?)?),
        "record" => Op::Record(arg(1)?.extract()?),
        "token_string" => Op::TokenString,
        "token_uuid" => Op::TokenUuid,
        "token_int" => Op::TokenInt,
        "token_long" => Op::TokenLong,
        "token_bytes" => Op::TokenBytes,
        "token_fixed" => Op::TokenFixed(arg(1)?.extract()?),
        "refuse" => Op::Refuse(arg(1)?.extract()?),
        other => return Err(PyValueError::new_err(format!("not a walk op: {other:?}"))),
    })
}

fn ops(items: &Bound<'_, PyAny>) -> PyResult<Vec<Op>> {
    items.try_iter()?.map(|item| op(&item?)).collect()
}

/// A program from golive_cli.recorder.rewrite.compile(): (root ops, ops of each record type).
fn program(compiled: &Bound<'_, PyAny>, desensitise: bool) -> PyResult<Program> {
    let (root, records): (Bound<PyAny>, Bound<PyAny>) = compiled.extract()?;
    let program = Program {
        root: ops(&root)?,
        records: records
            .try_iter()?
            .map(|r| ops(&r?))
            .collect::<PyResult<_>>()?,
    };
    let count = program.records.len();
    let (mut undefined, mut tokenising) = (false, false);
    for ops in std::iter::once(&program.root).chain(&program.records) {
        walk::each_op(ops, &mut |op| match op {
            Op::Record(i) if *i >= count => undefined = true,
            Op::TokenString
            | Op::TokenUuid
            | Op::TokenInt
            | Op::TokenLong
            | Op::TokenBytes
            | Op::TokenFixed(_) => tokenising = true,
            _ => {}
        });
    }
    if undefined {
        return Err(PyValueError::new_err(
            "the program refers to a record type it does not define",
        ));
    }
    if tokenising && !desensitise {
        return Err(PyValueError::new_err(
            "the program tokenises personal values but no key was given",
        ));
    }
    Ok(program)
}

/// What a schema that cannot be compiled into a program raises (resolve's UndecodableError, a
/// ValueError, or a program with a bad op or size): its records are undecodable, the capture
/// goes on.
fn walkable_error(py: Python<'_>, err: &PyErr) -> bool {
    err.is_instance_of::<PyValueError>(py)
        || err.is_instance_of::<PyTypeError>(py)
        || err.is_instance_of::<PyOverflowError>(py)
}

fn raise(fail: Fail) -> PyErr {
    match fail {
        Fail::Undecodable(reason) => UndecodableError::new_err(reason),
        Fail::Desensitise(reason) => DesensitiseError::new_err(reason),
    }
}

/// One writer schema compiled, with the capture key (None: check only).
#[pyclass(module = "golive_recorder_native")]
struct Rewriter {
    program: Program,
    tokens: Option<Tokens>,
    scratch: walk::Scratch,
}

#[pymethods]
impl Rewriter {
    #[new]
    #[pyo3(signature = (compiled, key))]
    fn new(compiled: &Bound<'_, PyAny>, key: Option<&[u8]>) -> PyResult<Self> {
        let program = program(compiled, key.is_some())?;
        Ok(Rewriter {
            program,
            tokens: key.map(Tokens::new),
            scratch: walk::Scratch::default(),
        })
    }

    /// The value desensitised from `start` on, or None if it is only checked (no key).
    #[pyo3(signature = (value, start = 0))]
    fn rewrite<'py>(
        &mut self,
        py: Python<'py>,
        value: &[u8],
        start: usize,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        if start > value.len() {
            return Err(UndecodableError::new_err(
                "does not decode: ends inside a value",
            ));
        }
        let mut out = Vec::new();
        let tokens = self.tokens.as_mut();
        let rewritten = self
            .program
            .rewrite(value, start, tokens, &mut self.scratch, &mut out)
            .map_err(raise)?;
        Ok(rewritten.then(|| PyBytes::new(py, &out)))
    }
}

/// A window being captured (see window.rs and reader.rs). `resolve(schema_id)` returns the
/// compiled program of a writer schema and its role in journeys (0 none, 1 start, 2 end), or
/// raises UndecodableError for an id that has no schema.
#[pyclass(module = "golive_recorder_native", unsendable)]
struct Window {
    reader: Option<reader::Reader>,
    merge: Option<Box<window::Merge>>,
    /// (started, open) once read to the end.
    journeys: (usize, usize),
    resolve: Py<PyAny>,
    desensitise: bool,
    schemas: FxHashMap<u32, Result<(), String>>,
    places: FxHashMap<(String, i32), usize>,
    last_ts: Vec<(String, i32, i64)>,
    last: Option<(String, i32, usize)>,
}

impl Window {
    /// The worker stopped on an error (a spool write failed): that error, not the channel's.
    fn worker_error(&mut self, py: Python<'_>) -> PyErr {
        match self.reader.take() {
            Some(reader) => match py.detach(|| reader.finish()) {
                Err(err) => err.into(),
                Ok(_) => PyRuntimeError::new_err("the capture worker stopped"),
            },
            None => PyRuntimeError::new_err("the capture worker stopped"),
        }
    }

    fn reader(&self) -> PyResult<&reader::Reader> {
        self.reader.as_ref().ok_or_else(|| {
            PyRuntimeError::new_err("the window is merged: nothing more can be read into it")
        })
    }

    fn merging(&mut self) -> PyResult<&mut window::Merge> {
        self.merge
            .as_deref_mut()
            .ok_or_else(|| PyRuntimeError::new_err("the window is not merged yet"))
    }

    /// The schema id of a value, or why it has none that decodes; a new writer schema is
    /// resolved (Python) and its program handed to the worker.
    fn schema(&mut self, py: Python<'_>, value: Option<&[u8]>) -> PyResult<Result<u32, String>> {
        let id = match window::Window::schema_id(value) {
            Ok(id) => id,
            Err(reason) => return Ok(Err(reason)),
        };
        if let Some(known) = self.schemas.get(&id) {
            return Ok(known.clone().map(|()| id));
        }
        let found = self.resolve.bind(py).call1((id,)).and_then(|found| {
            let (compiled, role): (Bound<PyAny>, u8) = found.extract()?;
            Ok((program(&compiled, self.desensitise)?, role))
        });
        let known = match found {
            Ok((compiled, role)) => {
                let reader = self.reader()?;
                if py.detach(|| reader.program(id, compiled, role)).is_err() {
                    return Err(self.worker_error(py));
                }
                Ok(())
            }
            // No such schema, or one this build cannot walk: its records are left out, counted.
            Err(err) if walkable_error(py, &err) => Err(err.value(py).str()?.to_string()),
            Err(err) => return Err(err),
        };
        self.schemas.insert(id, known.clone());
        Ok(known.map(|()| id))
    }

    fn place(&mut self, py: Python<'_>, topic: &str, partition: i32) -> PyResult<usize> {
        if let Some((t, p, i)) = &self.last {
            if t == topic && *p == partition {
                return Ok(*i);
            }
        }
        let key = (topic.to_owned(), partition);
        let i = match self.places.get(&key) {
            Some(&i) => i,
            None => {
                let reader = self.reader()?;
                if py.detach(|| reader.place(topic, partition)).is_err() {
                    return Err(self.worker_error(py));
                }
                self.last_ts.push((topic.to_owned(), partition, 0));
                self.places.insert(key, self.last_ts.len() - 1);
                self.last_ts.len() - 1
            }
        };
        self.last = Some((topic.to_owned(), partition, i));
        Ok(i)
    }
}

fn optional_bytes<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Option<&'a [u8]>> {
    if obj.is_none() {
        return Ok(None);
    }
    Ok(Some(obj.cast::<PyBytes>()?.as_bytes()))
}

#[pymethods]
impl Window {
    #[new]
    #[pyo3(signature = (key, resolve, spool_fd, batch, start_ms, end_ms))]
    fn new(
        key: Option<&[u8]>,
        resolve: Py<PyAny>,
        spool_fd: i32,
        batch: usize,
        start_ms: i64,
        end_ms: i64,
    ) -> PyResult<Self> {
        if spool_fd < 0 {
            return Err(PyValueError::new_err(
                "spool_fd must be an open file descriptor",
            ));
        }
        // Safety: the caller's open file, borrowed only to duplicate it: the window owns the
        // duplicate (and closes it), the caller keeps its own.
        let file = File::from(unsafe { BorrowedFd::borrow_raw(spool_fd) }.try_clone_to_owned()?);
        let inner = window::Window::new(key.map(Tokens::new), file, batch, start_ms, end_ms);
        Ok(Window {
            reader: Some(reader::Reader::start(inner)?),
            merge: None,
            journeys: (0, 0),
            resolve,
            desensitise: key.is_some(),
            schemas: FxHashMap::default(),
            places: FxHashMap::default(),
            last_ts: Vec::new(),
            last: None,
        })
    }

    /// Messages from Consumer.consume(): errors skipped, every other one copied and handed to
    /// the worker, which spools it.
    fn push(&mut self, py: Python<'_>, messages: &Bound<'_, PyList>) -> PyResult<()> {
        self.reader()?;
        let mut batch = reader::Batch::default();
        for msg in messages.iter() {
            if !msg.call_method0(intern!(py, "error"))?.is_none() {
                continue;
            }
            let topic_obj = msg.call_method0(intern!(py, "topic"))?;
            let topic = if topic_obj.is_none() {
                ""
            } else {
                topic_obj.cast::<PyString>()?.to_str()?
            };
            let partition: i32 = msg
                .call_method0(intern!(py, "partition"))?
                .extract::<Option<i32>>()?
                .unwrap_or(0);
            let timestamp: (i32, i64) = msg.call_method0(intern!(py, "timestamp"))?.extract()?;
            let offset: i64 = msg
                .call_method0(intern!(py, "offset"))?
                .extract::<Option<i64>>()?
                .unwrap_or(0);
            let key_obj = msg.call_method0(intern!(py, "key"))?;
            let value_obj = msg.call_method0(intern!(py, "value"))?;
            let headers_obj = msg.call_method0(intern!(py, "headers"))?;
            let place = self.place(py, topic, partition)?;
            let last_ts = &mut self.last_ts[place].2;
            *last_ts = (*last_ts).max(timestamp.1);
            let value = optional_bytes(&value_obj)?;
            let schema = self.schema(py, value)?;
            let first = batch.headers_from();
            if !headers_obj.is_none() {
                for header in headers_obj.try_iter()? {
                    let (name, data): (Bound<PyString>, Bound<PyAny>) = header?.extract()?;
                    let bytes: &[u8] = if data.is_none() {
                        b""
                    } else if let Ok(text) = data.cast::<PyString>() {
                        text.to_str()?.as_bytes()
                    } else {
                        data.cast::<PyBytes>()?.as_bytes()
                    };
                    batch.header(name.to_str()?, bytes);
                }
            }
            let record = reader::Record {
                place,
                timestamp_ms: timestamp.1,
                offset,
                key: optional_bytes(&key_obj)?.map(|k| batch.put(k)),
                value: value.map(|v| batch.put(v)),
                headers: (first, batch.headers_from() - first),
                schema,
            };
            batch.records.push(record);
        }
        let reader = self.reader()?;
        if py.detach(|| reader.batch(batch)).is_err() {
            return Err(self.worker_error(py));
        }
        Ok(())
    }

    /// The latest record timestamp read from each (topic, partition), 0 before any.
    fn last_timestamps<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (topic, partition, ts) in &self.last_ts {
            out.set_item((topic, partition), ts)?;
        }
        Ok(out)
    }

    /// Wait until the worker has spooled every batch pushed: `started` and `open` are exact
    /// afterwards (before, they may lag a few batches behind).
    fn settle(&mut self, py: Python<'_>) -> PyResult<()> {
        let reader = self.reader()?;
        if py.detach(|| reader.settle()).is_err() {
            return Err(self.worker_error(py));
        }
        Ok(())
    }

    /// Journeys started in the window (an OrderPlaced in it, by key).
    #[getter]
    fn started(&self) -> usize {
        self.reader
            .as_ref()
            .map_or(self.journeys, reader::Reader::journeys)
            .0
    }

    /// Journeys started in the window and not ended yet.
    #[getter]
    fn open(&self) -> usize {
        self.reader
            .as_ref()
            .map_or(self.journeys, reader::Reader::journeys)
            .1
    }

    /// Stop reading and tally what is kept (`tally()`); from now on `lines()` streams it.
    fn merge(&mut self, py: Python<'_>, complete_journeys: bool) -> PyResult<()> {
        let reader = self
            .reader
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("the window is merged already"))?;
        let window = py.detach(|| reader.finish())?;
        self.journeys = (window.started(), window.open());
        let merge = py.detach(|| window.merge(complete_journeys))?;
        self.merge = Some(Box::new(merge));
        Ok(())
    }

    /// The next kept records' capture-file lines, about `max_bytes` of them (b"" at the end).
    fn lines<'py>(&mut self, py: Python<'py>, max_bytes: usize) -> PyResult<Bound<'py, PyBytes>> {
        let merge = self.merging()?;
        let block = py.detach(|| merge.lines(max_bytes))?;
        Ok(PyBytes::new(py, &block))
    }

    /// Once merged: kept records per topic, their schema ids, undecodable ones kept per
    /// topic, and up to five reasons.
    fn tally<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let merge = self.merging()?;
        let counts = PyDict::new(py);
        for (topic, n) in &merge.counts {
            counts.set_item(topic, n)?;
        }
        let used = PySet::new(py, merge.used.iter())?;
        let undecodable = PyDict::new(py);
        for (topic, n) in &merge.undecodable {
            undecodable.set_item(topic, n)?;
        }
        let samples = PyList::new(py, &merge.samples)?;
        PyTuple::new(
            py,
            [
                counts.into_any(),
                used.into_any(),
                undecodable.into_any(),
                samples.into_any(),
            ],
        )
    }
}

/// `json.dumps(text)` (ASCII, Python's escapes): exposed for the tests that compare the two.
#[pyfunction]
fn json_string(text: &str) -> String {
    window::json_string(text)
}

#[pymodule]
fn golive_recorder_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Rewriter>()?;
    m.add_class::<Window>()?;
    m.add_function(wrap_pyfunction!(json_string, m)?)?;
    m.add("UndecodableError", m.py().get_type::<UndecodableError>())?;
    m.add("DesensitiseError", m.py().get_type::<DesensitiseError>())?;
    Ok(())
}
