//! How many heap allocations decoding a data file makes, counted by a global allocator on the
//! decoding thread: a csv row costs one (its image vector), whatever its text values, as long
//! as they are short (`Value`'s `Text` holds up to 24 bytes inline, and the csv reader reuses
//! the buffers of fields with doubled quotes). A long text value still costs its own. The
//! figure per file is the codec bench's (`testing::codec_fixture`, 1000 rows, six short text
//! values per row, one of them quoted with doubled quotes).
//!
//! One test per binary on purpose: the allocator counts only while a thread has switched it
//! on, so other tests running beside it would not disturb it, but keeping it alone keeps the
//! count readable.

use cdc_common::codec::codec_for;
use cdc_common::testing::codec_fixture::{orders_event, orders_table};
use cdc_common::{Protocol, RowChange, SinkOptions, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

struct Counting;

thread_local! {
    /// Allocations made on this thread while counting is on (`None`: off).
    static COUNT: Cell<Option<usize>> = const { Cell::new(None) };
}

fn bump() {
    // `try_with`: the slot may be gone while the thread exits.
    let _ = COUNT.try_with(|c| {
        if let Some(n) = c.get() {
            c.set(Some(n + 1));
        }
    });
}

// SAFETY: every call is passed on to `System` unchanged; counting only reads and writes a
// const-initialized thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations `f` makes on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize) {
    COUNT.with(|c| c.set(Some(0)));
    let out = f();
    let n = COUNT.with(|c| c.replace(None)).unwrap_or(0);
    (out, n)
}

/// The fixture's csv file, with its last row's `note` made longer than the inline size.
fn csv_file(rows: usize, long_note: bool) -> (Box<dyn cdc_common::codec::TableCodec>, Vec<u8>) {
    let table = Arc::new(orders_table());
    let mut event = orders_event(&table, rows);
    if long_note {
        let RowChange::Insert { after } = &mut event.rows[rows - 1] else {
            unreachable!("the fixture inserts")
        };
        after[9] = Value::String("a note \"quoted\" and longer than any inline text".into());
    }
    let options = SinkOptions {
        protocol: Protocol::Csv,
        ..SinkOptions::default()
    };
    let codec = codec_for(&options).unwrap().prepare(&table).unwrap();
    let mut file = Vec::new();
    codec.file_header(&mut file);
    codec.encode(&event, &mut file).unwrap();
    (codec, file)
}

#[test]
fn a_csv_row_of_short_text_allocates_only_its_image() {
    const ROWS: usize = 1000;
    let (codec, file) = csv_file(ROWS, false);
    let (rows, n) = allocations(|| codec.decode("orders.csv", &file).unwrap());
    assert_eq!(rows.len(), ROWS);
    // Per file: the row vector, the reader's field vector, its first copy buffer and a few
    // more (a small constant); per row: the image vector.
    assert!(
        n <= ROWS + 8,
        "decoding {ROWS} rows made {n} allocations ({:.2} per row), expected one per row",
        n as f64 / ROWS as f64
    );

    // A long text value is the one that costs its own allocation, and decodes whole.
    let (codec, file) = csv_file(ROWS, true);
    let (rows, long) = allocations(|| codec.decode("orders.csv", &file).unwrap());
    assert_eq!(
        rows[ROWS - 1].change.image()[9],
        Value::String("a note \"quoted\" and longer than any inline text".into())
    );
    assert_eq!(
        rows[ROWS - 2].change.image()[9],
        Value::String("shipped, \"fast\"".into())
    );
    assert!(
        long <= n + 2,
        "{long} allocations with one long value, {n} without"
    );
}
