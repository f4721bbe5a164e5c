//! Framing of the control channel between flowc-shim and the Python harness.
//!
//! A frame is `u32 header length | u64 body length` (big-endian), a JSON object header,
//! then the raw body. Headers carry the message (`{"op": "get", ...}`); bodies carry
//! artifact bytes, so a pickled value never passes through JSON. `flowc_harness.py`
//! implements the other end.

use std::io::{self, Read, Write};

use serde_json::Value;

/// Largest header accepted. The `init` message lists every parent's manifest, so a
/// join over a very wide foreach makes a large header; anything past this is a broken
/// peer, not a flow.
const MAX_HEADER_LEN: u32 = 256 << 20;

/// Largest body accepted in one frame. The harness sends artifact bytes in 1 MiB
/// chunks; the bound only guards against a corrupted length.
const MAX_BODY_LEN: u64 = 64 << 20;

/// Size of the bodies this side sends when streaming a blob.
pub(crate) const CHUNK_LEN: usize = 1 << 20;

/// One received frame.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) header: Value,
    pub(crate) body: Vec<u8>,
}

impl Frame {
    /// The `op` field of the header, or "" when missing.
    pub(crate) fn op(&self) -> &str {
        self.header.get("op").and_then(Value::as_str).unwrap_or("")
    }

    /// A string field of the header.
    pub(crate) fn str_field(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }
}

/// Writes one frame.
pub(crate) fn write_frame(out: &mut dyn Write, header: &Value, body: &[u8]) -> io::Result<()> {
    let header_bytes = serde_json::to_vec(header).map_err(io::Error::other)?;
    let header_len = u32::try_from(header_bytes.len())
        .ok()
        .filter(|len| *len <= MAX_HEADER_LEN)
        .ok_or_else(|| io::Error::other("control message header is too large"))?;
    let mut prefix = [0u8; 12];
    prefix[..4].copy_from_slice(&header_len.to_be_bytes());
    prefix[4..].copy_from_slice(&(body.len() as u64).to_be_bytes());
    out.write_all(&prefix)?;
    out.write_all(&header_bytes)?;
    out.write_all(body)?;
    out.flush()
}

/// Reads one frame; `Ok(None)` when the peer closed the channel between frames.
pub(crate) fn read_frame(input: &mut dyn Read) -> io::Result<Option<Frame>> {
    let mut prefix = [0u8; 12];
    if !read_exact_or_eof(input, &mut prefix)? {
        return Ok(None);
    }
    let mut header_len = [0u8; 4];
    header_len.copy_from_slice(&prefix[..4]);
    let header_len = u32::from_be_bytes(header_len);
    let mut body_len = [0u8; 8];
    body_len.copy_from_slice(&prefix[4..]);
    let body_len = u64::from_be_bytes(body_len);
    if header_len > MAX_HEADER_LEN || body_len > MAX_BODY_LEN {
        return Err(invalid(format!(
            "control frame too large (header {header_len} bytes, body {body_len} bytes)"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    input.read_exact(&mut header)?;
    let header: Value = serde_json::from_slice(&header)
        .map_err(|err| invalid(format!("control frame header is not JSON: {err}")))?;
    if !header.is_object() {
        return Err(invalid("control frame header is not a JSON object".into()));
    }
    let mut body = vec![0u8; body_len as usize];
    input.read_exact(&mut body)?;
    Ok(Some(Frame { header, body }))
}

/// Fills `buf`, or returns `false` if the stream ended before its first byte.
fn read_exact_or_eof(input: &mut dyn Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = buf.get_mut(filled..).unwrap_or_default();
        match input.read(rest) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(true)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frames_round_trip_with_and_without_body() {
        let mut wire = Vec::new();
        write_frame(&mut wire, &json!({"op": "get", "hash": "ab"}), b"").unwrap();
        write_frame(&mut wire, &json!({"op": "put_chunk"}), b"\x00\x01pickle").unwrap();
        let mut input = &wire[..];
        let first = read_frame(&mut input).unwrap().unwrap();
        assert_eq!(first.op(), "get");
        assert_eq!(first.str_field("hash"), Some("ab"));
        assert!(first.body.is_empty());
        let second = read_frame(&mut input).unwrap().unwrap();
        assert_eq!(second.op(), "put_chunk");
        assert_eq!(second.body, b"\x00\x01pickle");
        assert!(read_frame(&mut input).unwrap().is_none());
    }

    #[test]
    fn prefix_is_big_endian_lengths() {
        let mut wire = Vec::new();
        write_frame(&mut wire, &json!({}), b"xyz").unwrap();
        assert_eq!(&wire[..12], &[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(&wire[12..], b"{}xyz");
    }

    #[test]
    fn truncated_frame_is_an_error_not_eof() {
        let mut wire = Vec::new();
        write_frame(&mut wire, &json!({"op": "done"}), b"").unwrap();
        for cut in [5, 13] {
            let mut input = &wire[..cut];
            assert!(read_frame(&mut input).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn oversized_or_non_object_headers_are_rejected() {
        let mut wire = vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(read_frame(&mut &wire[..]).is_err());
        wire.clear();
        wire.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
        wire.extend_from_slice(b"[]");
        let err = read_frame(&mut &wire[..]).unwrap_err();
        assert!(err.to_string().contains("not a JSON object"), "{err}");
    }
}
