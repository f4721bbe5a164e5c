//! `flowc artifact get PATH NAME`: one artifact's value as JSON when it is made of plain
//! Python values, else a message naming its type and pointing at `--raw`, which writes
//! the stored bytes (the pickle) unchanged.
//!
//! Pickles are decoded without Python. A pickle may name any importable callable (a
//! "global") and have it called on load; such a value (a numpy array, an instance of a
//! user's class) has no faithful JSON form, and the decoder would silently turn an
//! object into its attribute dict. So before decoding, every opcode is walked, and a
//! pickle that refers to anything beyond the few builtins that plain values need is
//! declared not JSON-able.

use std::io::Write;

use flowc_shim::client::PathSpec;
use flowc_shim::store::{ArtifactEntry, BlobStore, StoreError};
use serde::Serialize;
use serde_json::Value;
use serde_pickle::{DeOptions, HashableValue, Value as Pickled};

use super::runs::{self, CommonArgs, Format};
use super::{Outcome, Reply, Status, Terminal};

/// Read the artifacts a task stored.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: ArtifactCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ArtifactCommand {
    /// Print one artifact's value as JSON, or its stored bytes with --raw.
    Get(GetArgs),
}

#[derive(Debug, clap::Args)]
struct GetArgs {
    /// The task: Flow/RUN/step/TASK, or Flow/RUN/step when the step has one task
    /// (RUN may be `latest`).
    #[arg(value_name = "PATH")]
    path: String,
    /// The artifact's name.
    #[arg(value_name = "NAME")]
    name: String,
    /// Write the stored bytes (for `pickle-v4`, the pickle) to stdout unchanged.
    #[arg(long, conflicts_with = "format")]
    raw: bool,
    #[command(flatten)]
    common: CommonArgs,
}

/// `flowc artifact get --format json`.
#[derive(Serialize)]
struct ArtifactJson<'a> {
    pathspec: String,
    name: &'a str,
    #[serde(rename = "type")]
    type_name: &'a str,
    size: u64,
    encoding: &'a str,
    hash: String,
    /// The value; `null` when it is not JSON-able (then `not_json_able` says why).
    value: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_json_able: Option<String>,
}

pub(crate) fn run(args: &Args, _terminal: &Terminal) -> Reply {
    match &args.command {
        ArtifactCommand::Get(get) => run_get(get),
    }
}

fn run_get(args: &GetArgs) -> Reply {
    let client = match runs::open(&args.common) {
        Ok(client) => client,
        Err(outcome) => return outcome.into(),
    };
    let located = PathSpec::parse(&args.path)
        .map_err(Into::into)
        .and_then(|spec| client.resolve_task(&spec))
        .and_then(|task| {
            let entry = client.artifact_entry(&task, &args.name)?;
            Ok((task, entry))
        });
    let (task, entry) = match located {
        Ok(found) => found,
        Err(err) => return runs::failure(&err).into(),
    };
    let store = client.store().clone();
    if args.raw {
        // Streamed: an artifact can be far larger than memory should hold. The hash is
        // checked at the end, so a corrupt blob ends with an error and exit status 2
        // after some bytes were written; the caller must discard them then.
        return Reply::Stream {
            stderr: String::new(),
            producer: Box::new(move |out: &mut dyn Write| {
                let label = std::path::Path::new("standard output");
                match store.get_to_writer(&task.flow, &entry.hash, out, label) {
                    Ok(_) => Ok((Status::Ok, String::new())),
                    Err(StoreError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::BrokenPipe =>
                    {
                        Err(source)
                    }
                    Err(err) => Ok((Status::Trouble, format!("error: {err}\n"))),
                }
            }),
        };
    }
    let bytes = match store.get(&task.flow, &entry.hash) {
        Ok(bytes) => bytes,
        Err(err) => return Outcome::failure(Status::Trouble, format!("error: {err}\n")).into(),
    };
    let decoded = decode(&entry, &bytes);
    let not_json_able = decoded.as_ref().err().map(|reason| {
        format!(
            "artifact `{}` of task {task} (type {}) is not JSON-able: {reason}; \
             `flowc artifact get {task} {} --raw` writes its stored bytes ({})",
            args.name, entry.type_name, args.name, entry.encoding
        )
    });
    let status = if decoded.is_ok() {
        Status::Ok
    } else {
        Status::Trouble
    };
    let outcome = match args.common.format {
        Format::Json => Outcome {
            stdout: runs::to_json(&ArtifactJson {
                pathspec: task.to_string(),
                name: &args.name,
                type_name: &entry.type_name,
                size: entry.size,
                encoding: &entry.encoding,
                hash: entry.hash.to_hex(),
                value: decoded.ok(),
                not_json_able: not_json_able.clone(),
            }),
            stderr: not_json_able
                .map(|m| format!("error: {m}\n"))
                .unwrap_or_default(),
            status,
        },
        Format::Text => match decoded {
            Ok(value) => Outcome {
                stdout: runs::to_json(&value),
                stderr: String::new(),
                status,
            },
            Err(_) => Outcome::failure(
                status,
                format!("error: {}\n", not_json_able.unwrap_or_default()),
            ),
        },
    };
    outcome.into()
}

/// The value of an artifact as JSON, or why it has none. `json`-encoded artifacts (the
/// runtime's own records) are parsed; pickles of plain values are decoded.
pub(crate) fn decode(entry: &ArtifactEntry, bytes: &[u8]) -> Result<Value, String> {
    if entry.encoding == "json" {
        return serde_json::from_slice(bytes)
            .map_err(|err| format!("its stored JSON does not parse ({err})"));
    }
    let Some(protocol) = entry.encoding.strip_prefix("pickle-v") else {
        return Err(format!(
            "it is stored with encoding `{}`, which flowc cannot decode",
            entry.encoding
        ));
    };
    if !matches!(protocol, "0" | "1" | "2" | "3" | "4" | "5") {
        return Err(format!(
            "it is stored as pickle protocol {protocol}, newer than flowc can decode (up to 5)"
        ));
    }
    if let Some(global) = foreign_reference(bytes)? {
        return Err(format!(
            "its pickle refers to `{global}`, so only Python can rebuild it"
        ));
    }
    let pickled = serde_pickle::value_from_slice(bytes, DeOptions::new())
        .map_err(|err| format!("its pickle cannot be decoded ({err})"))?;
    to_json(&pickled)
}

/// Plain values in JSON; the error names what JSON cannot hold.
fn to_json(value: &Pickled) -> Result<Value, String> {
    Ok(match value {
        Pickled::None => Value::Null,
        Pickled::Bool(b) => Value::Bool(*b),
        Pickled::I64(i) => Value::from(*i),
        Pickled::Int(big) => {
            // JSON numbers have no size limit, but readers do: beyond 64 bits most would
            // round it silently.
            return match u64::try_from(big) {
                Ok(n) => Ok(Value::from(n)),
                Err(_) => Err(format!("it holds the integer {big}, wider than 64 bits")),
            };
        }
        Pickled::F64(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(|| format!("it holds the float {f}, which JSON cannot represent"))?,
        Pickled::Bytes(_) => return Err("it holds bytes, which JSON has no type for".to_owned()),
        Pickled::String(s) => Value::String(s.clone()),
        Pickled::List(items) | Pickled::Tuple(items) => {
            Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Pickled::Set(items) | Pickled::FrozenSet(items) => Value::Array(
            items
                .iter()
                .map(|item| to_json(&item.clone().into_value()))
                .collect::<Result<_, _>>()?,
        ),
        Pickled::Dict(map) => {
            let mut object = serde_json::Map::new();
            for (key, item) in map {
                object.insert(json_key(key)?, to_json(item)?);
            }
            Value::Object(object)
        }
    })
}

/// A dict key as JSON's string keys hold it, the way Python's `json` module writes
/// keys: numbers in decimal, `true`/`false`/`null` for the constants.
fn json_key(key: &HashableValue) -> Result<String, String> {
    Ok(match key {
        HashableValue::String(s) => s.clone(),
        HashableValue::I64(i) => i.to_string(),
        HashableValue::Int(big) => big.to_string(),
        HashableValue::Bool(b) => b.to_string(),
        HashableValue::None => "null".to_owned(),
        HashableValue::F64(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => n.to_string(),
            None => {
                return Err(format!(
                    "it has the dict key {f}, which JSON cannot represent"
                ))
            }
        },
        HashableValue::Bytes(_) | HashableValue::Tuple(_) | HashableValue::FrozenSet(_) => {
            return Err("it has a dict key that is not a string, number, bool or None".to_owned())
        }
    })
}

/// Globals a pickle of plain values may use: how protocols 0–2 spell sets, bytearrays
/// and bytes, and what `serde_pickle` rebuilds itself.
const PLAIN_GLOBALS: [(&str, &str); 11] = [
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "bytearray"),
    ("builtins", "list"),
    ("builtins", "int"),
    ("__builtin__", "set"),
    ("__builtin__", "frozenset"),
    ("__builtin__", "bytearray"),
    ("__builtin__", "list"),
    ("__builtin__", "int"),
    ("_codecs", "encode"),
];

/// Pickle opcodes by what follows them in the stream.
mod op {
    pub(super) const GLOBAL: u8 = b'c';
    pub(super) const INST: u8 = b'i';
    pub(super) const STACK_GLOBAL: u8 = 0x93;
    pub(super) const MEMOIZE: u8 = 0x94;
    pub(super) const FRAME: u8 = 0x95;
    pub(super) const PROTO: u8 = 0x80;
    pub(super) const STOP: u8 = b'.';
    pub(super) const BINPUT: u8 = b'q';
    pub(super) const LONG_BINPUT: u8 = b'r';
    pub(super) const PUT: u8 = b'p';
    pub(super) const BINGET: u8 = b'h';
    pub(super) const LONG_BINGET: u8 = b'j';
    pub(super) const GET: u8 = b'g';
    pub(super) const SHORT_BINUNICODE: u8 = 0x8c;
    pub(super) const BINUNICODE: u8 = b'X';
    pub(super) const BINUNICODE8: u8 = 0x8d;
    pub(super) const UNICODE: u8 = b'V';
    /// Opcodes that build objects or pull values from outside the pickle: an object
    /// from a class (`OBJ`, `INST`), persistent ids, the extension registry, out-of-band
    /// buffers.
    pub(super) const FOREIGN: [(u8, &str); 7] = [
        (b'o', "an object built from a class"),
        (b'P', "a persistent id"),
        (b'Q', "a persistent id"),
        (0x82, "an extension-registry code"),
        (0x83, "an extension-registry code"),
        (0x84, "an extension-registry code"),
        (0x97, "an out-of-band buffer"),
    ];
}

/// How many argument bytes follow an opcode, for those with a fixed-size or
/// length-prefixed argument: `(fixed bytes, length-prefix bytes)`.
fn argument_shape(opcode: u8) -> Option<(usize, usize)> {
    Some(match opcode {
        // No argument.
        b'(' | b'.' | b'0' | b'1' | b'2' | b'N' | b'Q' | b'R' | b'a' | b'b' | b'd' | b'}'
        | b'e' | b'l' | b']' | b'o' | b's' | b't' | b')' | b'u' | 0x81 | 0x85 | 0x86 | 0x87
        | 0x88 | 0x89 | 0x8f | 0x90 | 0x91 | 0x92 | 0x93 | 0x94 | 0x97 | 0x98 => (0, 0),
        // BINGET, BINPUT, BININT1, EXT1, PROTO.
        b'h' | b'q' | b'K' | 0x82 | 0x80 => (1, 0),
        // BININT2, EXT2.
        b'M' | 0x83 => (2, 0),
        // BININT, EXT4, LONG_BINGET, LONG_BINPUT.
        b'J' | 0x84 | b'j' | b'r' => (4, 0),
        // BINFLOAT, FRAME.
        b'G' | 0x95 => (8, 0),
        // SHORT_BINSTRING, SHORT_BINBYTES, SHORT_BINUNICODE, LONG1.
        b'U' | b'C' | 0x8c | 0x8a => (0, 1),
        // BINSTRING, BINBYTES, BINUNICODE, LONG4.
        b'T' | b'B' | b'X' | 0x8b => (0, 4),
        // BINUNICODE8, BINBYTES8, BYTEARRAY8.
        0x8d | 0x8e | 0x96 => (0, 8),
        _ => return None,
    })
}

/// Walks the pickle's opcodes and returns the first reference to something other than
/// a plain value: a global outside [`PLAIN_GLOBALS`] (as `module.name`), or a
/// description of an object-building opcode. `Err` for bytes that are not a pickle.
///
/// `STACK_GLOBAL` (protocol 4 and later) takes the module and name from the two values
/// pushed before it, which the pickler writes as strings or fetches from the memo; the
/// walk tracks just enough of both to name them. A name it cannot tell counts as
/// foreign: declaring a plain value not JSON-able is harmless, the reverse is not.
fn foreign_reference(bytes: &[u8]) -> Result<Option<String>, String> {
    let truncated = || "its pickle is truncated".to_owned();
    let mut pos = 0usize;
    // The last two values pushed, as strings when they are; the memo, likewise.
    let mut recent: [Option<String>; 2] = [None, None];
    let mut memo: std::collections::HashMap<u64, Option<String>> = Default::default();
    let mut memo_next = 0u64;
    let push = |recent: &mut [Option<String>; 2], value: Option<String>| {
        recent.swap(0, 1);
        recent[1] = value;
    };
    while let Some(&opcode) = bytes.get(pos) {
        pos += 1;
        if let Some((_, what)) = op::FOREIGN.iter().find(|(code, _)| *code == opcode) {
            return Ok(Some((*what).to_owned()));
        }
        match opcode {
            op::STOP => return Ok(None),
            op::GLOBAL | op::INST => {
                let module = read_line(bytes, &mut pos).ok_or_else(truncated)?;
                let name = read_line(bytes, &mut pos).ok_or_else(truncated)?;
                if opcode == op::INST || !is_plain_global(&module, &name) {
                    return Ok(Some(format!("{module}.{name}")));
                }
                push(&mut recent, None);
                continue;
            }
            op::STACK_GLOBAL => {
                let [module, name] = &recent;
                match (module, name) {
                    (Some(module), Some(name)) if is_plain_global(module, name) => {}
                    (Some(module), Some(name)) => return Ok(Some(format!("{module}.{name}"))),
                    _ => return Ok(Some("a global it names indirectly".to_owned())),
                }
                push(&mut recent, None);
                continue;
            }
            op::PUT | op::GET | b'I' | b'L' | b'F' | b'S' | op::UNICODE => {
                let line = read_line(bytes, &mut pos).ok_or_else(truncated)?;
                match opcode {
                    op::PUT => {
                        let index = line.parse().map_err(|_| truncated())?;
                        memo.insert(index, recent[1].clone());
                    }
                    op::GET => {
                        let index: u64 = line.parse().map_err(|_| truncated())?;
                        push(&mut recent, memo.get(&index).cloned().flatten());
                    }
                    op::UNICODE => push(&mut recent, Some(line)),
                    _ => push(&mut recent, None),
                }
                continue;
            }
            _ => {}
        }
        let (fixed, prefix) = argument_shape(opcode)
            .ok_or_else(|| format!("it is not a pickle (unknown opcode 0x{opcode:02x})"))?;
        let argument = take(bytes, &mut pos, fixed).ok_or_else(truncated)?;
        let payload = if prefix > 0 {
            let length = take(bytes, &mut pos, prefix).ok_or_else(truncated)?;
            let length = usize::try_from(little_endian(length)).map_err(|_| truncated())?;
            Some(take(bytes, &mut pos, length).ok_or_else(truncated)?)
        } else {
            None
        };
        match opcode {
            op::PROTO | op::FRAME => {}
            op::MEMOIZE => {
                memo.insert(memo_next, recent[1].clone());
                memo_next += 1;
            }
            op::BINPUT | op::LONG_BINPUT => {
                memo.insert(little_endian(argument), recent[1].clone());
            }
            op::BINGET | op::LONG_BINGET => {
                let value = memo.get(&little_endian(argument)).cloned().flatten();
                push(&mut recent, value);
            }
            op::SHORT_BINUNICODE | op::BINUNICODE | op::BINUNICODE8 => {
                let text = payload.and_then(|p| std::str::from_utf8(p).ok());
                push(&mut recent, text.map(str::to_owned));
            }
            _ => push(&mut recent, None),
        }
    }
    Err(truncated())
}

fn is_plain_global(module: &str, name: &str) -> bool {
    PLAIN_GLOBALS.contains(&(module, name))
}

fn take<'a>(bytes: &'a [u8], pos: &mut usize, count: usize) -> Option<&'a [u8]> {
    let end = pos.checked_add(count)?;
    let slice = bytes.get(*pos..end)?;
    *pos = end;
    Some(slice)
}

fn read_line(bytes: &[u8], pos: &mut usize) -> Option<String> {
    let rest = bytes.get(*pos..)?;
    let end = rest.iter().position(|&b| b == b'\n')?;
    *pos += end + 1;
    Some(String::from_utf8_lossy(rest.get(..end)?).into_owned())
}

/// An unsigned little-endian integer of up to 8 bytes.
fn little_endian(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// A one-line preview of a value for `flowc show`: compact JSON cut to `width`
/// characters, or `None` when the value is not JSON-able.
pub(crate) fn preview(entry: &ArtifactEntry, bytes: &[u8], width: usize) -> Option<String> {
    let value = decode(entry, bytes).ok()?;
    let text = serde_json::to_string(&value).ok()?;
    if text.chars().count() <= width {
        return Some(text);
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    Some(cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowc_shim::store::BlobHash;

    // Written by CPython 3's `pickle.dumps`; `geo.Point` is a class with one attribute.
    const PLAIN_V4: &[u8] = b"\x80\x04\x95G\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01a\x94]\x94(K\x01G@\x04\x00\x00\x00\x00\x00\x00N\x88e\x8c\x01s\x94\x8f\x94(K\x01K\x03\x90\x8c\x01t\x94K\x01\x8c\x01x\x94\x86\x94K\x07\x8c\x05seven\x94\x8c\x03neg\x94J l\xfb\xffu.";
    const PLAIN_V2_SET: &[u8] = b"\x80\x02}q\x00(X\x01\x00\x00\x00sq\x01c__builtin__\x0aset\x0aq\x02]q\x03(K\x01K\x02e\x85q\x04Rq\x05X\x01\x00\x00\x00fq\x06c__builtin__\x0afrozenset\x0aq\x07]q\x08K\x03a\x85q\x09Rq\x0au.";
    const PLAIN_V0: &[u8] = b"(lp0\x0aI1\x0aaVx\x0ap1\x0aaF2.5\x0aa.";
    const STR_V5: &[u8] = b"\x80\x05\x95\x0b\x00\x00\x00\x00\x00\x00\x00\x8c\x07boosted\x94.";
    const ORDERED_DICT_V4: &[u8] = b"\x80\x04\x95)\x00\x00\x00\x00\x00\x00\x00\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94\x8c\x01a\x94K\x01s.";
    const CUSTOM_V4: &[u8] = b"\x80\x04\x95%\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01p\x94\x8c\x03geo\x94\x8c\x05Point\x94\x93\x94)\x81\x94}\x94\x8c\x01x\x94K\x01sbs.";
    const CUSTOM_V2: &[u8] =
        b"\x80\x02cgeo\x0aPoint\x0aq\x00)\x81q\x01}q\x02X\x01\x00\x00\x00xq\x03K\x01sb.";
    const BYTES_V4: &[u8] = b"\x80\x04\x95\x07\x00\x00\x00\x00\x00\x00\x00C\x03abc\x94.";
    const NAN_V4: &[u8] =
        b"\x80\x04\x95\x0d\x00\x00\x00\x00\x00\x00\x00]\x94G\x7f\xf8\x00\x00\x00\x00\x00\x00a.";
    const BIG_V4: &[u8] =
        b"\x80\x04\x95\x0c\x00\x00\x00\x00\x00\x00\x00\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00@.";
    const MEMO_V4: &[u8] = b"\x80\x04\x954\x00\x00\x00\x00\x00\x00\x00]\x94(}\x94\x8c\x01x\x94\x8c\x03geo\x94\x8c\x05Point\x94\x93\x94)\x81\x94}\x94h\x02K\x01sbsh\x05)\x81\x94}\x94h\x02K\x01sbe.";
    const MEMO_NAMES_V4: &[u8] = b"\x80\x04\x95&\x00\x00\x00\x00\x00\x00\x00]\x94(\x8c\x03geo\x94\x8c\x05Point\x94h\x01h\x02\x93\x94)\x81\x94}\x94\x8c\x01x\x94K\x01sbe.";

    fn entry(encoding: &str) -> ArtifactEntry {
        ArtifactEntry {
            hash: BlobHash::from_bytes([0; 32]),
            type_name: "builtins.dict".into(),
            size: 0,
            encoding: encoding.into(),
        }
    }

    fn pickle(bytes: &[u8]) -> Result<Value, String> {
        decode(&entry("pickle-v4"), bytes)
    }

    #[test]
    fn plain_values_of_every_protocol_decode_to_json() {
        assert_eq!(
            pickle(PLAIN_V4).unwrap(),
            serde_json::json!({
                "a": [1, 2.5, null, true], "s": [1, 3], "t": [1, "x"], "7": "seven",
                "neg": -300000,
            })
        );
        assert_eq!(
            pickle(PLAIN_V2_SET).unwrap(),
            serde_json::json!({"s": [1, 2], "f": [3]})
        );
        assert_eq!(pickle(PLAIN_V0).unwrap(), serde_json::json!([1, "x", 2.5]));
        assert_eq!(
            decode(&entry("pickle-v5"), STR_V5).unwrap(),
            serde_json::json!("boosted")
        );
    }

    #[test]
    fn values_that_need_a_class_are_not_json_able_and_say_which() {
        let err = pickle(ORDERED_DICT_V4).unwrap_err();
        assert!(err.contains("`collections.OrderedDict`"), "{err}");
        for bytes in [CUSTOM_V4, CUSTOM_V2, MEMO_V4, MEMO_NAMES_V4] {
            let err = pickle(bytes).unwrap_err();
            assert!(err.contains("`geo.Point`"), "{err}");
        }
    }

    #[test]
    fn values_json_cannot_hold_are_refused_with_the_reason() {
        assert!(pickle(BYTES_V4).unwrap_err().contains("bytes"));
        assert!(pickle(NAN_V4).unwrap_err().contains("NaN"));
        assert!(pickle(BIG_V4)
            .unwrap_err()
            .contains("1180591620717411303424"));
    }

    #[test]
    fn garbage_and_truncated_pickles_are_errors_not_panics() {
        for len in 0..PLAIN_V4.len() {
            assert!(pickle(&PLAIN_V4[..len]).is_err(), "prefix of {len} bytes");
        }
        assert!(pickle(b"\xff\xff").unwrap_err().contains("not a pickle"));
        assert!(pickle(b"\x8c\xff\xff\xff\xff\xff\xff\xff\xff").is_err());
    }

    #[test]
    fn json_encoded_artifacts_are_parsed_and_unknown_encodings_named() {
        assert_eq!(
            decode(&entry("json"), br#"{"ok": true}"#).unwrap(),
            serde_json::json!({"ok": true})
        );
        let err = decode(&entry("arrow-v1"), b"x").unwrap_err();
        assert!(err.contains("encoding `arrow-v1`"), "{err}");
        let err = decode(&entry("pickle-v6"), b"x").unwrap_err();
        assert!(err.contains("protocol 6"), "{err}");
    }

    #[test]
    fn previews_are_compact_and_cut() {
        let short = preview(&entry("pickle-v4"), STR_V5, 20).unwrap();
        assert_eq!(short, "\"boosted\"");
        let cut = preview(&entry("pickle-v4"), PLAIN_V4, 12).unwrap();
        assert_eq!(cut.chars().count(), 12);
        assert!(cut.ends_with('…'), "{cut}");
        assert_eq!(preview(&entry("pickle-v4"), CUSTOM_V4, 20), None);
    }
}
