//! Moving bytes to and from S3 with bounded memory: a compressed blob is staged in
//! memory while small and in a temporary file past that, then uploaded in one
//! `PutObject` or, when large, as a multipart upload whose parts stream from the file;
//! downloads are read chunk by chunk through a blocking [`Read`] adapter.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::Bytes;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use super::client::sdk_error;
use crate::store::error::{StoreError, StoreResult};
use crate::store::fsutil::TempFile;

/// Compressed bytes kept in memory before staging moves to a temporary file. Most
/// artifacts are far smaller and never touch the disk.
const MEMORY_LIMIT: usize = 8 << 20;

/// Largest object sent with one `PutObject`; larger ones go multipart, so a failed
/// request costs one part, not the whole object.
const SINGLE_PUT_MAX: u64 = 64 << 20;

/// Part size of multipart uploads, raised when an object would need more parts than
/// S3 allows.
const PART_SIZE: u64 = 16 << 20;

/// S3's limit on the parts of one upload.
const MAX_PARTS: u64 = 10_000;

/// Parts uploaded at once. Each streams from the staged file, so this bounds
/// connections, not memory.
const PARTS_IN_FLIGHT: usize = 4;

/// An encoded blob staged until its hash, and so its key, is known.
pub(crate) enum Staged {
    Memory(Vec<u8>),
    /// The temporary file (removed on drop) and its length.
    File {
        temp: TempFile,
        len: u64,
    },
}

/// The stager's state while bytes are still coming.
enum Stage {
    Memory(Vec<u8>),
    File {
        temp: TempFile,
        out: BufWriter<File>,
        len: u64,
    },
}

/// A [`Write`] that stages in memory up to [`MEMORY_LIMIT`] bytes and spills to a
/// temporary file in `temp_dir` beyond.
pub(crate) struct Stager<'a> {
    stage: Stage,
    temp_dir: &'a Path,
}

impl<'a> Stager<'a> {
    pub(crate) fn new(temp_dir: &'a Path) -> Self {
        Stager {
            stage: Stage::Memory(Vec::new()),
            temp_dir,
        }
    }

    /// Flushes the file, if any, and returns what was staged.
    pub(crate) fn finish(self) -> StoreResult<Staged> {
        match self.stage {
            Stage::Memory(bytes) => Ok(Staged::Memory(bytes)),
            Stage::File { temp, out, len } => {
                let path = temp.path().to_path_buf();
                out.into_inner()
                    .map_err(|err| StoreError::io("write", path, err.into_error()))?;
                Ok(Staged::File { temp, len })
            }
        }
    }

    /// Moves the memory buffer and `pending` into a new temporary file.
    fn spill(&mut self, pending: &[u8]) -> io::Result<()> {
        let Stage::Memory(buffer) = &mut self.stage else {
            return Ok(());
        };
        let mut temp = TempFile::create_in(self.temp_dir).map_err(io::Error::other)?;
        let file = temp.file().map_err(io::Error::other)?.try_clone()?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(buffer)?;
        out.write_all(pending)?;
        let len = (buffer.len() + pending.len()) as u64;
        self.stage = Stage::File { temp, out, len };
        Ok(())
    }
}

impl Write for Stager<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.stage {
            Stage::Memory(buffer) if buffer.len() + data.len() <= MEMORY_LIMIT => {
                buffer.extend_from_slice(data);
            }
            Stage::Memory(_) => self.spill(data)?,
            Stage::File { out, len, .. } => {
                out.write_all(data)?;
                *len += data.len() as u64;
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.stage {
            Stage::Memory(_) => Ok(()),
            Stage::File { out, .. } => out.flush(),
        }
    }
}

/// One object to upload: its bucket and key, and `url` for messages.
pub(crate) struct Target<'a> {
    pub(crate) bucket: &'a str,
    pub(crate) key: &'a str,
    pub(crate) url: &'a str,
}

/// Uploads bytes already in memory with one `PutObject`.
pub(crate) fn put_bytes(
    runtime: &Runtime,
    client: &Client,
    target: &Target<'_>,
    bytes: Vec<u8>,
) -> StoreResult<()> {
    runtime
        .block_on(
            client
                .put_object()
                .bucket(target.bucket)
                .key(target.key)
                .body(ByteStream::from(bytes))
                .send(),
        )
        .map(|_| ())
        .map_err(|err| sdk_error("upload", target.url, err))
}

/// Uploads the file at `path` (`len` bytes), streaming it: one `PutObject` up to
/// [`SINGLE_PUT_MAX`], a multipart upload beyond.
pub(crate) fn put_file(
    runtime: &Runtime,
    client: &Client,
    target: &Target<'_>,
    path: &Path,
    len: u64,
) -> StoreResult<()> {
    if len <= SINGLE_PUT_MAX {
        // Exactly `len` bytes, even if the file grows meanwhile (a log that a
        // leftover process still writes to).
        let body = runtime
            .block_on(
                ByteStream::read_from()
                    .path(path)
                    .length(Length::Exact(len))
                    .build(),
            )
            .map_err(|err| StoreError::io("read", path, io::Error::other(err)))?;
        return runtime
            .block_on(
                client
                    .put_object()
                    .bucket(target.bucket)
                    .key(target.key)
                    .content_length(i64::try_from(len).unwrap_or(i64::MAX))
                    .body(body)
                    .send(),
            )
            .map(|_| ())
            .map_err(|err| sdk_error("upload", target.url, err));
    }
    runtime.block_on(multipart(client, target, path, len))
}

/// The part size for an object of `len` bytes: [`PART_SIZE`], or the smallest whole
/// MiB that keeps the upload within [`MAX_PARTS`].
pub(crate) fn part_size(len: u64) -> u64 {
    let needed = len.div_ceil(MAX_PARTS);
    let mib = 1 << 20;
    PART_SIZE.max(needed.div_ceil(mib) * mib)
}

async fn multipart(client: &Client, target: &Target<'_>, path: &Path, len: u64) -> StoreResult<()> {
    let created = client
        .create_multipart_upload()
        .bucket(target.bucket)
        .key(target.key)
        .send()
        .await
        .map_err(|err| sdk_error("start a multipart upload of", target.url, err))?;
    let Some(upload_id) = created.upload_id().map(str::to_owned) else {
        return Err(StoreError::io(
            "start a multipart upload of",
            target.url,
            io::Error::other("the service returned no upload id"),
        ));
    };
    let result = upload_parts(client, target, path, len, &upload_id).await;
    let parts = match result {
        Ok(parts) => parts,
        Err(err) => {
            // Best effort: an upload left open costs storage until a lifecycle rule
            // removes it; the error worth reporting is the one that stopped us.
            let _ = client
                .abort_multipart_upload()
                .bucket(target.bucket)
                .key(target.key)
                .upload_id(&upload_id)
                .send()
                .await;
            return Err(err);
        }
    };
    client
        .complete_multipart_upload()
        .bucket(target.bucket)
        .key(target.key)
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map(|_| ())
        .map_err(|err| sdk_error("complete the multipart upload of", target.url, err))
}

/// Uploads every part, [`PARTS_IN_FLIGHT`] at a time, each streamed from its range of
/// the file, and returns them in part-number order.
async fn upload_parts(
    client: &Client,
    target: &Target<'_>,
    path: &Path,
    len: u64,
    upload_id: &str,
) -> StoreResult<Vec<CompletedPart>> {
    let size = part_size(len);
    let count = len.div_ceil(size);
    let mut running: JoinSet<StoreResult<CompletedPart>> = JoinSet::new();
    let mut done = Vec::new();
    for index in 0..count {
        while running.len() >= PARTS_IN_FLIGHT {
            done.push(joined(running.join_next().await, target.url)?);
        }
        let offset = index * size;
        let part_len = size.min(len - offset);
        // Part numbers count from 1 and are at most MAX_PARTS, so they fit.
        let number = i32::try_from(index + 1).unwrap_or(i32::MAX);
        let client = client.clone();
        let (bucket, key, url) = (
            target.bucket.to_owned(),
            target.key.to_owned(),
            target.url.to_owned(),
        );
        let (path, upload_id) = (path.to_path_buf(), upload_id.to_owned());
        running.spawn(async move {
            let body = ByteStream::read_from()
                .path(&path)
                .offset(offset)
                .length(Length::Exact(part_len))
                .build()
                .await
                .map_err(|err| StoreError::io("read", path.clone(), io::Error::other(err)))?;
            let uploaded = client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .content_length(i64::try_from(part_len).unwrap_or(i64::MAX))
                .body(body)
                .send()
                .await
                .map_err(|err| sdk_error("upload a part of", &url, err))?;
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(uploaded.e_tag().map(str::to_owned))
                .build())
        });
    }
    while let Some(result) = running.join_next().await {
        done.push(joined(Some(result), target.url)?);
    }
    done.sort_by_key(|part| part.part_number());
    Ok(done)
}

fn joined(
    result: Option<Result<StoreResult<CompletedPart>, tokio::task::JoinError>>,
    url: &str,
) -> StoreResult<CompletedPart> {
    match result {
        Some(Ok(part)) => part,
        Some(Err(err)) => Err(StoreError::io(
            "upload a part of",
            url,
            io::Error::other(format!("the upload task failed: {err}")),
        )),
        None => Err(StoreError::io(
            "upload a part of",
            url,
            io::Error::other("no upload task was running"),
        )),
    }
}

/// A downloaded object's body as a blocking reader. A transport failure is remembered
/// in `failure` as well as returned: the blob decoder cannot tell it from a truncated
/// stream, and the store must not report a network error as a corrupt blob.
pub(crate) struct BodyReader<'a> {
    runtime: &'a Runtime,
    body: ByteStream,
    chunk: Bytes,
    pub(crate) failure: Option<String>,
}

impl<'a> BodyReader<'a> {
    pub(crate) fn new(runtime: &'a Runtime, body: ByteStream) -> Self {
        BodyReader {
            runtime,
            body,
            chunk: Bytes::new(),
            failure: None,
        }
    }
}

impl Read for BodyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.runtime.block_on(self.body.try_next()) {
                Ok(Some(chunk)) => self.chunk = chunk,
                Ok(None) => return Ok(0),
                Err(err) => {
                    let message = format!(
                        "the download broke off: {}",
                        aws_sdk_s3::error::DisplayErrorContext(&err)
                    );
                    self.failure = Some(message.clone());
                    return Err(io::Error::other(message));
                }
            }
        }
        let n = self.chunk.len().min(buf.len());
        let head = self.chunk.split_to(n);
        if let Some(slot) = buf.get_mut(..n) {
            slot.copy_from_slice(&head);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testutil::TestDir;

    #[test]
    fn parts_stay_within_the_service_limit() {
        assert_eq!(part_size(100 << 20), PART_SIZE);
        // 1 TiB needs parts of at least 105 MiB (rounded up to a whole MiB).
        let tib = 1u64 << 40;
        let size = part_size(tib);
        assert!(tib.div_ceil(size) <= MAX_PARTS);
        assert_eq!(size % (1 << 20), 0);
        assert_eq!(size, 105 << 20);
    }

    #[test]
    fn stager_keeps_small_data_in_memory_and_spills_large_data() {
        let dir = TestDir::new("stager");
        let mut small = Stager::new(dir.path());
        small.write_all(b"abc").unwrap();
        assert!(matches!(small.finish().unwrap(), Staged::Memory(b) if b == b"abc"));

        let mut large = Stager::new(dir.path());
        let chunk = vec![5u8; 3 << 20];
        for _ in 0..4 {
            large.write_all(&chunk).unwrap();
        }
        match large.finish().unwrap() {
            Staged::File { temp, len, .. } => {
                assert_eq!(len, 12 << 20);
                let on_disk = std::fs::read(temp.path()).unwrap();
                assert_eq!(on_disk.len(), 12 << 20);
                assert!(on_disk.iter().all(|&b| b == 5));
            }
            Staged::Memory(_) => panic!("12 MiB should have spilled to a file"),
        }
    }
}
