//! Streaming a rewritten data file (parquet, `compression=gzip|zstd`) into a multipart upload.
//!
//! The whole-file step of a file at or above the multipart threshold runs on a blocking thread
//! and writes its output into a [`PartSender`], which hands it on in parts of
//! `multipart-part-size` through a channel of one slot to the upload. The sink then holds about
//! four parts of the rewritten file (one being filled, one in the channel, two buffered by the
//! upload) instead of all of it beside its input.
//!
//! Invariants:
//! - the object exists only once the upload completes: a failed whole-file step or upload
//!   aborts the upload, so no partial object is ever visible under the data file's name;
//! - a retried upload runs the whole-file step again from the same parts (it is a pure
//!   function of them), so every attempt stores the same bytes;
//! - a codec failure is not retried and comes back as the codec's own error naming the object.

use crate::error::{Result, SinkError};
use crate::writer::WriterContext;
use bytes::Bytes;
use cdc_common::codec::TableCodec;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// A `Write` that sends its bytes on in parts of a fixed size (the last one shorter).
pub(crate) struct PartSender {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
    part: usize,
    sent: u64,
}

impl PartSender {
    fn new(tx: mpsc::Sender<Bytes>, part: usize) -> PartSender {
        PartSender {
            tx,
            buf: Vec::with_capacity(part),
            part: part.max(1),
            sent: 0,
        }
    }

    /// Sends the buffered bytes as one part; blocks while the channel is full.
    fn send(&mut self) -> io::Result<()> {
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(self.part));
        self.sent += full.len() as u64;
        self.tx
            .blocking_send(Bytes::from(full))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
    }

    /// Sends the last, partial part; returns the bytes sent in all.
    fn finish(mut self) -> io::Result<u64> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        Ok(self.sent)
    }
}

impl Write for PartSender {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            let n = (self.part - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if self.buf.len() == self.part {
                self.send()?;
            }
        }
        Ok(data.len())
    }

    /// Parts go out when full; the last one in [`PartSender::finish`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `codec`'s whole-file step over `parts` into a multipart upload of `object`; returns
/// the stored size. Retried as one multipart operation (see the module doc).
pub(crate) async fn put_streamed(
    ctx: &WriterContext,
    codec: &Arc<dyn TableCodec>,
    object: &str,
    parts: &[Bytes],
) -> Result<u64> {
    let location = cdc_common::storage::key(object)?;
    let part = ctx.config.multipart_part_size;
    let input: usize = parts.iter().map(Bytes::len).sum();
    let scale = input.div_ceil(part.max(1)) as u32 + 1;
    let codec_failure: Mutex<Option<SinkError>> = Mutex::new(None);
    let r = crate::retry::retry(
        &ctx.config.retry,
        &ctx.metrics,
        "multipart",
        object,
        scale,
        || async {
            let attempt = attempt(&ctx.store, &location, part, codec, object, parts).await;
            match attempt {
                Attempt::Stored(n) => Ok(n),
                Attempt::Upload(e) => Err(e),
                Attempt::Codec(e) => {
                    if let Ok(mut slot) = codec_failure.lock() {
                        *slot = Some(e);
                    }
                    // Not retryable: the same parts fail the same way.
                    Err(object_store::Error::NotSupported {
                        source: "the whole-file step failed".into(),
                    })
                }
            }
        },
    )
    .await;
    match r {
        Ok(n) => Ok(n),
        Err(e) => Err(codec_failure.into_inner().ok().flatten().unwrap_or(e)),
    }
}

/// How one attempt ended.
enum Attempt {
    Stored(u64),
    Upload(object_store::Error),
    Codec(SinkError),
}

/// One attempt: the whole-file step on a blocking thread feeding the upload on this task.
async fn attempt(
    store: &Arc<dyn ObjectStore>,
    location: &Path,
    part: usize,
    codec: &Arc<dyn TableCodec>,
    object: &str,
    parts: &[Bytes],
) -> Attempt {
    let upload = match store.put_multipart(location).await {
        Ok(u) => u,
        Err(e) => return Attempt::Upload(e),
    };
    let mut w = WriteMultipart::new_with_chunk_size(upload, part);
    let (tx, mut rx) = mpsc::channel::<Bytes>(1);
    let (codec, name, input) = (Arc::clone(codec), object.to_string(), parts.to_vec());
    let finishing = tokio::task::spawn_blocking(move || -> Result<u64> {
        let mut out = PartSender::new(tx, part);
        codec.finish_file_into(&name, input, &mut out)?;
        out.finish().map_err(|e| {
            SinkError::from(cdc_common::Error::Encode {
                what: format!("data file `{name}`"),
                reason: format!("writing the finished file failed: {e}"),
            })
        })
    });
    let mut upload_failed = None;
    while let Some(b) = rx.recv().await {
        if let Err(e) = w.wait_for_capacity(2).await {
            upload_failed = Some(e);
            break;
        }
        w.put(b);
    }
    // Unblocks the finishing thread if the upload stopped early.
    drop(rx);
    let finished = finishing.await;
    if let Some(e) = upload_failed {
        let _ = w.abort().await;
        return Attempt::Upload(e);
    }
    match finished {
        Ok(Ok(n)) => match w.finish().await {
            Ok(_) => Attempt::Stored(n),
            Err(e) => Attempt::Upload(e),
        },
        Ok(Err(e)) => {
            let _ = w.abort().await;
            Attempt::Codec(e)
        }
        Err(join) => {
            let _ = w.abort().await;
            Attempt::Codec(SinkError::from(cdc_common::Error::Encode {
                what: format!("data file `{object}`"),
                reason: format!("the finishing thread failed: {join}"),
            }))
        }
    }
}
