//! The window's worker thread: the consuming thread copies each batch's messages out of Python
//! (which needs the interpreter) and hands them over; this thread walks, desensitises, formats
//! and spools them (which does not), so the two overlap on two cores.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::walk::Program;
use crate::window::{Message, Window};

/// Batches handed over and not yet spooled, at most: the consumer waits beyond that.
const QUEUED_BATCHES: usize = 4;

/// A byte range of a batch's arena.
#[derive(Clone, Copy)]
pub struct Span {
    start: usize,
    len: usize,
}

pub struct Record {
    pub place: usize,
    pub timestamp_ms: i64,
    pub offset: i64,
    pub key: Option<Span>,
    pub value: Option<Span>,
    /// This record's headers: `headers[first..first + count]` of the batch.
    pub headers: (usize, usize),
    /// Its schema id, or why it has none that decodes.
    pub schema: Result<u32, String>,
}

/// Messages copied out of Python: their bytes in one arena.
#[derive(Default)]
pub struct Batch {
    arena: Vec<u8>,
    pub records: Vec<Record>,
    headers: Vec<(Span, Span)>,
}

impl Batch {
    pub fn put(&mut self, data: &[u8]) -> Span {
        let span = Span {
            start: self.arena.len(),
            len: data.len(),
        };
        self.arena.extend_from_slice(data);
        span
    }

    pub fn header(&mut self, name: &str, value: &[u8]) {
        let header = (self.put(name.as_bytes()), self.put(value));
        self.headers.push(header);
    }

    pub fn headers_from(&self) -> usize {
        self.headers.len()
    }

    fn bytes(&self, span: Span) -> &[u8] {
        &self.arena[span.start..span.start + span.len]
    }
}

enum Job {
    Program(u32, Program, u8),
    Place(String, i32),
    Batch(Batch),
    Sync(SyncSender<()>),
}

#[derive(Default)]
struct Progress {
    started: AtomicUsize,
    open: AtomicUsize,
}

pub struct Reader {
    jobs: SyncSender<Job>,
    worker: JoinHandle<io::Result<Window>>,
    progress: Arc<Progress>,
}

/// The worker stopped (a spool write failed): `finish` says why.
pub struct Stopped;

impl Reader {
    pub fn start(window: Window) -> io::Result<Reader> {
        let (jobs, queue) = sync_channel(QUEUED_BATCHES);
        let progress = Arc::new(Progress::default());
        let shared = Arc::clone(&progress);
        let worker = std::thread::Builder::new()
            .name("golive-capture".into())
            // The walk recurses, at most walk::MAX_DEPTH levels of a few hundred bytes each.
            .stack_size(8 << 20)
            .spawn(move || work(window, queue, &shared))?;
        Ok(Reader {
            jobs,
            worker,
            progress,
        })
    }

    pub fn program(&self, schema_id: u32, program: Program, role: u8) -> Result<(), Stopped> {
        self.jobs
            .send(Job::Program(schema_id, program, role))
            .map_err(|_| Stopped)
    }

    pub fn place(&self, topic: &str, partition: i32) -> Result<(), Stopped> {
        self.jobs
            .send(Job::Place(topic.to_owned(), partition))
            .map_err(|_| Stopped)
    }

    pub fn batch(&self, batch: Batch) -> Result<(), Stopped> {
        self.jobs.send(Job::Batch(batch)).map_err(|_| Stopped)
    }

    /// Wait until every batch handed over is spooled.
    pub fn settle(&self) -> Result<(), Stopped> {
        let (done, wait) = sync_channel(1);
        self.jobs.send(Job::Sync(done)).map_err(|_| Stopped)?;
        wait.recv().map_err(|_| Stopped)
    }

    /// Journeys started in the window, and of those not ended, as of the last batch spooled.
    pub fn journeys(&self) -> (usize, usize) {
        (
            self.progress.started.load(Ordering::Acquire),
            self.progress.open.load(Ordering::Acquire),
        )
    }

    /// Stop the worker once it has spooled everything: the window, or the error that stopped it.
    pub fn finish(self) -> io::Result<Window> {
        drop(self.jobs);
        self.worker
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the capture worker panicked")))
    }
}

fn work(mut window: Window, queue: Receiver<Job>, progress: &Progress) -> io::Result<Window> {
    for job in queue {
        match job {
            Job::Program(schema_id, program, role) => {
                window.programs.insert(schema_id, (program, role));
            }
            Job::Place(topic, partition) => window.add_place(&topic, partition),
            Job::Batch(batch) => {
                for record in &batch.records {
                    let (first, count) = record.headers;
                    let headers = batch.headers[first..first + count]
                        .iter()
                        .map(|&(name, value)| {
                            let name =
                                std::str::from_utf8(batch.bytes(name)).expect("copied from a str");
                            (name, batch.bytes(value))
                        })
                        .collect();
                    let msg = Message {
                        timestamp_ms: record.timestamp_ms,
                        offset: record.offset,
                        key: record.key.map(|s| batch.bytes(s)),
                        headers,
                        value: record.value.map(|s| batch.bytes(s)),
                    };
                    window.add(record.place, &msg, record.schema.clone())?;
                }
                progress.started.store(window.started(), Ordering::Release);
                progress.open.store(window.open(), Ordering::Release);
            }
            Job::Sync(done) => {
                let _ = done.send(());
            }
        }
    }
    Ok(window)
}
