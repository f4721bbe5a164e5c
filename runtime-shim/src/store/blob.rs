//! The blob encoding, independent of where blobs are kept: hash + zstd-compress a
//! stream in one pass, and decompress + verify a stream against its hash. The local
//! store and the object-store backends share it, so a blob means the same bytes
//! everywhere.
//!
//! Both directions work in fixed-size chunks, so memory stays bounded by the chunk
//! and zstd's window whatever the artifact's size.

use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::error::{Corruption, StoreError, StoreResult};
use super::names::BlobHash;

/// Bytes moved per read. Large enough that per-call overhead vanishes next to
/// hashing and compression, small enough to be irrelevant beside a Python process.
const CHUNK: usize = 1 << 20;

/// The SHA-256 of `bytes`: a blob's name.
pub fn hash_bytes(bytes: &[u8]) -> BlobHash {
    BlobHash::from_bytes(Sha256::digest(bytes).into())
}

/// What [`encode`] learnt about the uncompressed stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Encoded {
    pub(crate) hash: BlobHash,
    pub(crate) size: u64,
}

/// Reads `input` to its end, hashing the bytes and writing them zstd-compressed at
/// `level` to `output`. `input_label` and `output_label` name the two ends in errors.
pub(crate) fn encode(
    input: &mut dyn Read,
    input_label: &Path,
    output: &mut dyn Write,
    output_label: &Path,
    level: i32,
) -> StoreResult<Encoded> {
    let write_err = |err| StoreError::io("write compressed blob", output_label, err);
    let mut encoder = zstd::stream::write::Encoder::new(output, level).map_err(write_err)?;
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(StoreError::io("read artifact data from", input_label, err)),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        encoder.write_all(chunk).map_err(write_err)?;
        size += n as u64;
    }
    encoder.finish().map_err(write_err)?;
    Ok(Encoded {
        hash: BlobHash::from_bytes(hasher.finalize().into()),
        size,
    })
}

/// Decompresses the blob `input` (read from `blob_path`) into `sink`, checking that the
/// bytes hash to `expected`. Returns the uncompressed size.
///
/// The check can only finish at the end, so `sink` has seen every byte by then: on
/// error the caller must discard what it received. `sink_label` names the sink in
/// errors.
pub(crate) fn decode_verified(
    input: &mut dyn Read,
    blob_path: &Path,
    expected: &BlobHash,
    sink: &mut dyn Write,
    sink_label: &Path,
) -> StoreResult<u64> {
    let mut decoder = zstd::stream::read::Decoder::new(input)
        .map_err(|err| StoreError::io("start decompressing", blob_path, err))?;
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(read_error(blob_path, expected, err)),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        sink.write_all(chunk)
            .map_err(|err| StoreError::io("write blob content to", sink_label, err))?;
        size += n as u64;
    }
    let actual = BlobHash::from_bytes(hasher.finalize().into());
    if actual != *expected {
        return Err(StoreError::Corrupt {
            path: blob_path.to_path_buf(),
            expected: *expected,
            actual: Corruption::HashMismatch { actual },
        });
    }
    Ok(size)
}

/// Sorts a failed read into the file system's fault and the data's fault. The
/// operating system's errors carry an errno; the decoder's own ("incomplete frame",
/// "unknown frame descriptor") do not.
fn read_error(blob_path: &Path, expected: &BlobHash, err: io::Error) -> StoreError {
    if err.raw_os_error().is_some() {
        StoreError::io("read", blob_path, err)
    } else {
        StoreError::Corrupt {
            path: blob_path.to_path_buf(),
            expected: *expected,
            actual: Corruption::Undecodable {
                reason: err.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_bytes(data: &[u8]) -> (Encoded, Vec<u8>) {
        let mut out = Vec::new();
        let encoded = encode(
            &mut &data[..],
            Path::new("in"),
            &mut out,
            Path::new("out"),
            3,
        )
        .unwrap();
        (encoded, out)
    }

    fn decode(blob: &[u8], expected: &BlobHash) -> StoreResult<Vec<u8>> {
        let mut out = Vec::new();
        decode_verified(
            &mut &blob[..],
            Path::new("/s/blob"),
            expected,
            &mut out,
            Path::new("sink"),
        )?;
        Ok(out)
    }

    #[test]
    fn hash_is_sha256_of_the_uncompressed_bytes() {
        // The well-known digest of "abc".
        assert_eq!(
            hash_bytes(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let data = b"abcabcabcabcabcabc".repeat(100);
        let (encoded, blob) = encode_bytes(&data);
        assert_eq!(encoded.hash, hash_bytes(&data));
        assert_eq!(encoded.size, data.len() as u64);
        assert!(blob.len() < data.len(), "repetitive data should compress");
    }

    #[test]
    fn level_changes_bytes_not_hash() {
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 7) as u8)
            .collect();
        let mut fast = Vec::new();
        let mut slow = Vec::new();
        let a = encode(&mut &data[..], Path::new("i"), &mut fast, Path::new("o"), 1).unwrap();
        let b = encode(
            &mut &data[..],
            Path::new("i"),
            &mut slow,
            Path::new("o"),
            19,
        )
        .unwrap();
        assert_eq!(a.hash, b.hash);
        assert_ne!(fast, slow);
    }

    #[test]
    fn round_trip_including_empty() {
        for data in [Vec::new(), b"x".to_vec(), vec![0u8; 3 * CHUNK + 17]] {
            let (encoded, blob) = encode_bytes(&data);
            assert_eq!(decode(&blob, &encoded.hash).unwrap(), data);
        }
    }

    #[test]
    fn wrong_content_is_a_hash_mismatch() {
        let (_, blob) = encode_bytes(b"other value");
        let expected = hash_bytes(b"the value");
        match decode(&blob, &expected).unwrap_err() {
            StoreError::Corrupt {
                expected: e,
                actual: Corruption::HashMismatch { actual },
                ..
            } => {
                assert_eq!(e, expected);
                assert_eq!(actual, hash_bytes(b"other value"));
            }
            other => panic!("expected a hash mismatch, got {other}"),
        }
    }

    #[test]
    fn truncated_or_foreign_data_is_undecodable() {
        let data = vec![7u8; 100_000];
        let (encoded, blob) = encode_bytes(&data);
        for broken in [
            &blob[..blob.len() - 1],
            &blob[..blob.len() / 2],
            b"plain text",
        ] {
            match decode(broken, &encoded.hash).unwrap_err() {
                StoreError::Corrupt {
                    actual: Corruption::Undecodable { .. },
                    ..
                } => {}
                other => panic!("expected undecodable, got {other}"),
            }
        }
    }

    #[test]
    fn input_read_errors_name_the_input() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let err = encode(
            &mut Failing,
            Path::new("/tmp/artifact.pkl"),
            &mut Vec::new(),
            Path::new("o"),
            1,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read artifact data from `/tmp/artifact.pkl`: disk on fire"
        );
    }
}
