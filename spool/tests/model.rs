//! Model-based test: random sequences of enqueue, read, release, drop, rotate, write-buffered
//! and close-and-open run against the spool and against a plain synchronous model; after every
//! step the outcome, the bytes read, the wake and flush callbacks run so far (in order), the
//! accounting, the bytes held in the write buffer, the watermark state, the segment table and
//! the files on disk must agree. Reads hit the write buffer or the file depending on the ops
//! before them. Batched reads (`read_many_into`) of consecutive, gapped and descending picks
//! must return what per-entry reads return.

use crate::support;

use bytes::Bytes;
use cdc_spool::segment::{segment_file_name, RECORD_HEADER_LEN};
use cdc_spool::{Enqueued, Entry, EntryLocation, Spool};
use proptest::prelude::*;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use support::spool_config;

#[derive(Clone, Debug)]
enum Op {
    Enqueue {
        len: usize,
        wake: bool,
        flush: bool,
    },
    Read(usize),
    /// A batched read of `count` entries from `start`, every `step`-th (wrapping): step 1 is a
    /// run of consecutive records, larger steps leave gaps, `len - 1` descends.
    ReadMany {
        start: usize,
        count: usize,
        step: usize,
    },
    Release(usize),
    /// `Spool::release_many` of up to `count` distinct entries picked as `ReadMany` picks them.
    ReleaseMany {
        start: usize,
        count: usize,
        step: usize,
    },
    Drop(usize),
    Rotate,
    WriteBuffered,
    Reopen,
}

#[derive(Clone, Debug)]
struct Params {
    memory_quota: u64,
    disk_quota: u64,
    segment_size: u64,
    high: u64,
    low: u64,
}

fn params() -> impl Strategy<Value = Params> {
    (1u64..400, 1u64..900, 1u64..400, 1u64..1200)
        .prop_flat_map(|(m, d, s, h)| (Just((m, d, s, h)), 0..h))
        .prop_map(
            |((memory_quota, disk_quota, segment_size, high), low)| Params {
                memory_quota,
                disk_quota,
                segment_size,
                high,
                low,
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prop_oneof![4 => 0usize..120, 1 => 0usize..1000], any::<bool>(), any::<bool>())
            .prop_map(|(len, wake, flush)| Op::Enqueue { len, wake, flush }),
        2 => any::<usize>().prop_map(Op::Read),
        2 => (any::<usize>(), 1usize..12, prop_oneof![3 => Just(1usize), 1 => any::<usize>()])
            .prop_map(|(start, count, step)| Op::ReadMany { start, count, step }),
        3 => any::<usize>().prop_map(Op::Release),
        1 => (any::<usize>(), 1usize..12, prop_oneof![3 => Just(1usize), 1 => any::<usize>()])
            .prop_map(|(start, count, step)| Op::ReleaseMany { start, count, step }),
        1 => any::<usize>().prop_map(Op::Drop),
        1 => Just(Op::Rotate),
        1 => Just(Op::WriteBuffered),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    InMemory,
    Spilled,
    Oversized,
    Wait,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MLoc {
    Mem,
    Disk { segment: u64, offset: u64 },
}

#[derive(Debug)]
struct MEntry {
    tag: u64,
    data: Vec<u8>,
    flush: bool,
    loc: MLoc,
}

/// The plain model: counters, a segment table of (live, end), the watermark flag and queue.
#[derive(Debug)]
struct Model {
    p: Params,
    memory: u64,
    disk: u64,
    memory_entries: u64,
    disk_entries: u64,
    segments: BTreeMap<u64, (u64, u64)>,
    active: Option<u64>,
    next_segment: u64,
    /// Record bytes of the active segment not yet written to its file (records are far below
    /// the 1 MiB chunk size here, so only rotation, `write_buffered`, the release of the
    /// segment's last entry and reuse from offset 0 empty the buffer).
    buffered: u64,
    holding: bool,
    held: VecDeque<u64>,
    generation: u64,
    wakes: Vec<u64>,
    flushes: Vec<u64>,
    entries: Vec<MEntry>,
}

impl Model {
    fn new(p: Params) -> Model {
        Model {
            p,
            memory: 0,
            disk: 0,
            memory_entries: 0,
            disk_entries: 0,
            segments: BTreeMap::new(),
            active: None,
            next_segment: 0,
            buffered: 0,
            holding: false,
            held: VecDeque::new(),
            generation: 0,
            wakes: Vec::new(),
            flushes: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// Close and open: everything goes, the callback logs stay (held wakes never run).
    fn reopen(&mut self) {
        let (wakes, flushes) = (
            std::mem::take(&mut self.wakes),
            std::mem::take(&mut self.flushes),
        );
        *self = Model::new(self.p.clone());
        self.wakes = wakes;
        self.flushes = flushes;
    }

    fn rotate(&mut self) {
        let Some(id) = self.active else { return };
        let (live, end) = self.segments[&id];
        if end == 0 {
            return;
        }
        self.active = None;
        self.buffered = 0;
        if live == 0 {
            self.segments.remove(&id);
        }
    }

    fn enqueue(&mut self, tag: u64, data: Vec<u8>, wake: bool, flush: bool) -> Kind {
        let len = data.len() as u64;
        let rec = len + RECORD_HEADER_LEN;
        let kind = if self.memory + len <= self.p.memory_quota {
            Kind::InMemory
        } else if rec > self.p.disk_quota {
            if self.disk == 0 {
                Kind::Oversized
            } else {
                Kind::Wait
            }
        } else if self.disk + rec <= self.p.disk_quota {
            Kind::Spilled
        } else {
            Kind::Wait
        };
        let loc = match kind {
            Kind::Wait => return kind,
            Kind::InMemory => {
                self.memory += len;
                self.memory_entries += 1;
                MLoc::Mem
            }
            Kind::Spilled | Kind::Oversized => {
                if let Some(id) = self.active {
                    let s = self.segments.get_mut(&id).unwrap();
                    if s.0 == 0 {
                        s.1 = 0;
                        self.buffered = 0;
                    }
                    if s.1 > 0 && s.1 + rec > self.p.segment_size {
                        self.rotate();
                    }
                }
                let id = *self.active.get_or_insert_with(|| {
                    let id = self.next_segment;
                    self.next_segment += 1;
                    self.segments.insert(id, (0, 0));
                    id
                });
                let s = self.segments.get_mut(&id).unwrap();
                let offset = s.1;
                s.1 += rec;
                s.0 += 1;
                self.buffered += rec;
                self.disk += rec;
                self.disk_entries += 1;
                MLoc::Disk {
                    segment: id,
                    offset,
                }
            }
        };
        let total = self.memory + self.disk;
        if !self.holding && total > self.p.high {
            self.holding = true;
        }
        if wake {
            if self.holding {
                self.held.push_back(tag);
            } else {
                self.wakes.push(tag);
            }
        }
        self.entries.push(MEntry {
            tag,
            data,
            flush,
            loc,
        });
        kind
    }

    fn free(&mut self, i: usize, run_flush: bool) {
        let e = self.entries.remove(i);
        self.free_entry(e, run_flush);
    }

    /// The release (or drop) of an entry already taken out of `entries`.
    fn free_entry(&mut self, e: MEntry, run_flush: bool) {
        if run_flush && e.flush {
            self.flushes.push(e.tag);
        }
        let len = e.data.len() as u64;
        match e.loc {
            MLoc::Mem => {
                self.memory -= len;
                self.memory_entries -= 1;
            }
            MLoc::Disk { segment, .. } => {
                self.disk -= len + RECORD_HEADER_LEN;
                self.disk_entries -= 1;
                let s = self.segments.get_mut(&segment).unwrap();
                s.0 -= 1;
                if s.0 == 0 && self.active != Some(segment) {
                    self.segments.remove(&segment);
                } else if s.0 == 0 {
                    self.buffered = 0;
                }
            }
        }
        self.generation += 1;
        if self.holding && self.memory + self.disk <= self.p.low {
            self.holding = false;
            self.wakes.extend(self.held.drain(..));
        }
    }
}

type Log = Arc<Mutex<Vec<u64>>>;

fn logger(log: &Log, tag: u64) -> Option<cdc_spool::Callback> {
    let log = Arc::clone(log);
    Some(Box::new(move || log.lock().unwrap().push(tag)))
}

fn data_of(tag: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (tag as usize * 7 + i * 13) as u8)
        .collect()
}

fn open(p: &Params, dir: &std::path::Path, registry: &prometheus::Registry) -> Spool {
    let cfg = spool_config(dir, p.memory_quota, p.disk_quota, p.high, p.low)
        .segment_size(p.segment_size)
        .build()
        .unwrap();
    Spool::open(cfg, "model", registry).unwrap()
}

fn check(model: &Model, spool: &Spool, real: &[Entry], wakes: &Log, flushes: &Log) {
    let s = spool.stats();
    assert_eq!(s.memory_bytes, model.memory, "memory bytes");
    assert_eq!(s.disk_bytes, model.disk, "disk bytes");
    assert_eq!(s.memory_entries, model.memory_entries, "memory entries");
    assert_eq!(s.disk_entries, model.disk_entries, "disk entries");
    assert_eq!(s.entries, model.entries.len() as u64, "entries");
    assert_eq!(s.segments, model.segments.len() as u64, "segments");
    assert_eq!(s.active_segment, model.active, "active segment");
    assert_eq!(
        s.buffered_bytes, model.buffered,
        "bytes in the write buffer"
    );
    assert_eq!(s.holding, model.holding, "watermark state");
    assert_eq!(s.held_wakes, model.held.len() as u64, "held wakes");
    assert_eq!(s.space_generation, model.generation, "space generation");
    assert_eq!(*wakes.lock().unwrap(), model.wakes, "wakes run, in order");
    assert_eq!(
        *flushes.lock().unwrap(),
        model.flushes,
        "flushes run, in order"
    );
    assert!(
        s.memory_bytes <= model.p.memory_quota,
        "memory within quota"
    );
    assert!(
        s.disk_bytes <= model.p.disk_quota || s.disk_entries == 1,
        "disk within quota unless one oversized record"
    );
    let mut files: Vec<String> = std::fs::read_dir(spool.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let want: Vec<String> = model
        .segments
        .keys()
        .map(|&id| segment_file_name(id))
        .collect();
    assert_eq!(files, want, "segment files on disk");
    assert_eq!(real.len(), model.entries.len());
    for (r, m) in real.iter().zip(&model.entries) {
        let loc = match r.location() {
            EntryLocation::Memory { .. } => MLoc::Mem,
            EntryLocation::Disk {
                segment, offset, ..
            } => MLoc::Disk { segment, offset },
        };
        assert_eq!(loc, m.loc, "location of entry {}", m.tag);
        assert_eq!(r.len(), m.data.len());
    }
}

fn run(p: Params, ops: Vec<Op>) {
    let tmp = tempfile::tempdir().unwrap();
    let registry = prometheus::Registry::new();
    let mut spool = open(&p, tmp.path(), &registry);
    let mut model = Model::new(p.clone());
    let mut real: Vec<Entry> = Vec::new();
    let wakes: Log = Arc::default();
    let flushes: Log = Arc::default();
    let mut tag = 0u64;
    for op in ops {
        match op {
            Op::Enqueue { len, wake, flush } => {
                tag += 1;
                let data = data_of(tag, len);
                let want = model.enqueue(tag, data.clone(), wake, flush);
                let w = if wake { logger(&wakes, tag) } else { None };
                let f = if flush { logger(&flushes, tag) } else { None };
                let got = spool.try_enqueue(data.clone(), w, f).unwrap();
                let kind = match got {
                    Enqueued::InMemory(e) => {
                        real.push(e);
                        Kind::InMemory
                    }
                    Enqueued::Spilled(e) => {
                        real.push(e);
                        Kind::Spilled
                    }
                    Enqueued::Oversized(e) => {
                        real.push(e);
                        Kind::Oversized
                    }
                    Enqueued::WaitForDiskQuota {
                        data: back,
                        wake: w,
                        flush: f,
                        ..
                    } => {
                        assert_eq!(back, Bytes::from(data));
                        assert_eq!((w.is_some(), f.is_some()), (wake, flush));
                        Kind::Wait
                    }
                };
                assert_eq!(kind, want, "outcome of enqueue {tag} ({len} bytes)");
            }
            Op::Read(i) if !real.is_empty() => {
                let i = i % real.len();
                let got = spool.read(&real[i]).unwrap();
                assert_eq!(&got[..], &model.entries[i].data[..], "bytes read back");
            }
            Op::ReadMany { start, count, step } if !real.is_empty() => {
                let n = real.len();
                let (start, step) = (start % n, step % n);
                let picked: Vec<usize> = (0..count).map(|k| (start + k * step) % n).collect();
                let batch: Vec<&Entry> = picked.iter().map(|&i| &real[i]).collect();
                let mut got = vec![Bytes::from_static(b"kept")];
                spool
                    .read_many_into(batch.iter().copied(), &mut got)
                    .unwrap();
                assert_eq!(
                    got.len(),
                    1 + picked.len(),
                    "one payload per entry, appended"
                );
                assert_eq!(&got[0][..], b"kept");
                for (b, &i) in got[1..].iter().zip(&picked) {
                    assert_eq!(
                        &b[..],
                        &model.entries[i].data[..],
                        "batched bytes read back"
                    );
                    assert_eq!(b, &spool.read(&real[i]).unwrap(), "same as a single read");
                }
            }
            Op::Release(i) if !real.is_empty() => {
                let i = i % real.len();
                model.free(i, true);
                spool.release(real.remove(i));
            }
            Op::ReleaseMany { start, count, step } if !real.is_empty() => {
                let n = real.len();
                let (start, step) = (start % n, step % n);
                let mut picked: Vec<usize> = Vec::new();
                for k in 0..count {
                    let i = (start + k * step) % n;
                    if !picked.contains(&i) {
                        picked.push(i);
                    }
                }
                // Take the picked entries out (highest index first so the others keep theirs),
                // then release them in the picked order, in the model one by one.
                let mut by_index = Vec::new();
                let mut desc = picked.clone();
                desc.sort_unstable_by(|a, b| b.cmp(a));
                for i in desc {
                    by_index.push((i, model.entries.remove(i), real.remove(i)));
                }
                let mut batch = Vec::new();
                for i in &picked {
                    let at = by_index.iter().position(|(j, _, _)| j == i).unwrap();
                    let (_, m, r) = by_index.swap_remove(at);
                    model.free_entry(m, true);
                    batch.push(r);
                }
                spool.release_many(batch);
            }
            Op::Drop(i) if !real.is_empty() => {
                let i = i % real.len();
                model.free(i, false);
                drop(real.remove(i));
            }
            Op::Rotate => {
                model.rotate();
                spool.rotate();
            }
            Op::WriteBuffered => {
                model.buffered = 0;
                spool.write_buffered().unwrap();
            }
            Op::Reopen => {
                let dir = spool.dir().to_path_buf();
                spool.close().unwrap();
                assert!(!dir.exists(), "close removes the directory");
                real.clear(); // dropped after close: no effect, no flush
                model.reopen();
                spool = open(&p, tmp.path(), &registry);
            }
            Op::Read(_)
            | Op::ReadMany { .. }
            | Op::Release(_)
            | Op::ReleaseMany { .. }
            | Op::Drop(_) => {}
        }
        check(&model, &spool, &real, &wakes, &flushes);
    }
    // release everything: the accounting returns to zero and every held wake runs
    while !real.is_empty() {
        model.free(0, true);
        spool.release(real.remove(0));
    }
    check(&model, &spool, &real, &wakes, &flushes);
    assert_eq!(spool.stats().total_bytes(), 0);
    assert_eq!(spool.stats().held_wakes, 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn spool_matches_the_model(p in params(), ops in prop::collection::vec(op(), 1..80)) {
        run(p, ops);
    }
}

#[test]
fn model_smoke_hold_and_release_across_reopen() {
    // a fixed sequence that goes through every state, so the model test cannot pass vacuously
    let p = Params {
        memory_quota: 50,
        disk_quota: 200,
        segment_size: 64,
        high: 100,
        low: 20,
    };
    let mut ops = Vec::new();
    for _ in 0..6 {
        ops.push(Op::Enqueue {
            len: 40,
            wake: true,
            flush: true,
        });
    }
    ops.extend([
        Op::Read(3),
        Op::WriteBuffered,
        Op::Read(4),
        Op::Release(0),
        Op::Rotate,
        Op::Drop(2),
        Op::Reopen,
    ]);
    ops.extend((0..3).map(|_| Op::Enqueue {
        len: 30,
        wake: true,
        flush: false,
    }));
    run(p, ops);
}
