//! The one place that turns documents into text: YAML for Kubernetes manifests, JSON
//! for everything else. Changing how YAML is written touches only this file.
//!
//! YAML is written by a small serde `Serializer` of our own that streams block-style
//! YAML straight into a `String`. It replaced `serde_norway` (the maintained
//! continuation of `serde_yaml`), whose libyaml port made the YAML writer the largest
//! cost of `flowc compile --target argo`: about two thirds of the instructions for a
//! 100-step flow. The layout is the one `serde_norway` writes (two-space indent, a
//! sequence inside a mapping not indented, `{}` / `[]` for empty collections, keys in
//! serialisation order, multi-line strings as literal blocks), and so is the choice of
//! plain, single- or double-quoted style for ordinary strings, so switching writers
//! left every Argo snapshot byte for byte the same.
//!
//! Where the two differ, this writer quotes more: a string is written plain only when
//! every YAML reader gives back exactly that string, YAML 1.1 readers included
//! (Kubernetes' `sigs.k8s.io/yaml`, PyYAML), so `yes`, `on`, `y`, `1_000`, `0b101`,
//! `12:30` (base 60 in YAML 1.1), `.inf` and dates like `2024-01-01` are quoted, as are
//! the YAML 1.2 spellings (`true`, `null`, `~`, `0x1F`, `0o7`, `1e3`). Strings with
//! characters a plain or single-quoted scalar cannot carry (control characters, tabs,
//! line breaks other than `\n`, a byte order mark) are double-quoted with escapes.

use std::fmt::{Display, Write as _};

use serde::ser::{self, Impossible, Serialize};

/// `value` as one YAML document (no `---` line), ending in a newline.
pub fn yaml<T: Serialize + ?Sized>(value: &T) -> Result<String, String> {
    let mut out = String::with_capacity(4096);
    value
        .serialize(ValueWriter {
            out: &mut out,
            place: Place::Root,
        })
        .map_err(|err| err.0)?;
    Ok(out)
}

/// Several documents as one YAML stream, each started by `---`.
pub fn yaml_stream<T: Serialize>(values: &[T]) -> Result<String, String> {
    let mut out = String::new();
    for value in values {
        out.push_str("---\n");
        out.push_str(&yaml(value)?);
    }
    Ok(out)
}

/// `value` as pretty-printed JSON, ending in a newline.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<String, String> {
    let mut text = serde_json::to_string_pretty(value).map_err(|err| err.to_string())?;
    text.push('\n');
    Ok(text)
}

/// Why a value could not be written as YAML: a shape this writer does not support (enum
/// variants carrying data, non-scalar map keys) or a `Serialize` impl's own error. Both
/// are bugs in the document types, never something a flow can cause.
#[derive(Debug)]
struct EmitError(String);

impl Display for EmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EmitError {}

impl ser::Error for EmitError {
    fn custom<T: Display>(msg: T) -> Self {
        EmitError(msg.to_string())
    }
}

fn unsupported(what: &str) -> EmitError {
    EmitError(format!("cannot write {what} as YAML"))
}

/// Where the value being written goes: what is already on its line decides how a
/// scalar, a mapping or a sequence starts.
#[derive(Debug, Clone, Copy)]
enum Place {
    /// The document itself: nothing written yet.
    Root,
    /// After `key:` of a mapping entry whose key starts at column `indent`.
    MapValue { indent: usize },
    /// After the `-` of a sequence item written at column `indent`.
    SeqItem { indent: usize },
}

impl Place {
    /// What goes between the place and a scalar.
    fn scalar_prefix(self) -> &'static str {
        match self {
            Place::Root => "",
            Place::MapValue { .. } | Place::SeqItem { .. } => " ",
        }
    }

    /// How a non-empty collection starts here: what to write first, the column of its
    /// entries, and whether the first entry follows on the same line (`- key: value`).
    /// A sequence that is a mapping's value is not indented (`key:\n- item`), as
    /// Kubernetes manifests are usually written.
    fn layout(self, sequence: bool) -> (&'static str, usize, bool) {
        match self {
            Place::Root => ("", 0, false),
            Place::MapValue { indent } if sequence => ("\n", indent, false),
            Place::MapValue { indent } => ("\n", indent + 2, false),
            Place::SeqItem { indent } => (" ", indent + 2, true),
        }
    }

    /// The column of a literal block's lines.
    fn block_indent(self) -> usize {
        match self {
            Place::Root => 2,
            Place::MapValue { indent } | Place::SeqItem { indent } => indent + 2,
        }
    }
}

fn push_indent(out: &mut String, width: usize) {
    const SPACES: &str = "                                                                ";
    let mut left = width;
    while left > 0 {
        let n = left.min(SPACES.len());
        out.push_str(&SPACES[..n]);
        left -= n;
    }
}

/// Writes one value at `place`.
struct ValueWriter<'a> {
    out: &'a mut String,
    place: Place,
}

impl<'a> ValueWriter<'a> {
    /// A scalar that needs no quoting (numbers, booleans, `null`).
    fn plain(self, text: &str) -> Result<(), EmitError> {
        self.out.push_str(self.place.scalar_prefix());
        self.out.push_str(text);
        self.out.push('\n');
        Ok(())
    }

    fn string(self, value: &str) -> Result<(), EmitError> {
        let style = value_style(value);
        if let Style::Literal { strip } = style {
            self.out.push_str(self.place.scalar_prefix());
            self.out.push_str(if strip { "|-\n" } else { "|\n" });
            let indent = self.place.block_indent();
            let body = value.strip_suffix('\n').unwrap_or(value);
            for line in body.split('\n') {
                if !line.is_empty() {
                    push_indent(self.out, indent);
                    self.out.push_str(line);
                }
                self.out.push('\n');
            }
        } else {
            self.out.push_str(self.place.scalar_prefix());
            push_flow_scalar(self.out, value, style);
            self.out.push('\n');
        }
        Ok(())
    }

    fn collection(self, sequence: bool) -> CollectionWriter<'a> {
        let (opener, indent, inline_first) = self.place.layout(sequence);
        CollectionWriter {
            out: self.out,
            empty: match (self.place, sequence) {
                (Place::Root, true) => "[]\n",
                (Place::Root, false) => "{}\n",
                (_, true) => " []\n",
                (_, false) => " {}\n",
            },
            opener,
            indent,
            inline_first,
            entries: 0,
        }
    }

    fn float(
        self,
        value: f64,
        text: impl FnOnce() -> Result<String, EmitError>,
    ) -> Result<(), EmitError> {
        if value.is_nan() {
            self.plain(".nan")
        } else if value.is_infinite() {
            self.plain(if value > 0.0 { ".inf" } else { "-.inf" })
        } else {
            let text = text()?;
            self.plain(&yaml_1_1_float(text))
        }
    }
}

/// serde_json prints the shortest text that reads back as the same number, always with
/// a `.` or an exponent so that it never reads back as an int (`1.0`, `1e300`,
/// `1.5e-7`). YAML 1.1 readers (PyYAML) take an exponent only after a `.` and with a
/// sign, so `1e300` becomes `1.0e+300`.
fn yaml_1_1_float(text: String) -> String {
    let Some((mantissa, exponent)) = text.split_once(['e', 'E']) else {
        return text;
    };
    let dot = if mantissa.contains('.') { "" } else { ".0" };
    let sign = if exponent.starts_with(['+', '-']) {
        ""
    } else {
        "+"
    };
    format!("{mantissa}{dot}e{sign}{exponent}")
}

fn json_number<T: Serialize>(value: T) -> Result<String, EmitError> {
    serde_json::to_string(&value).map_err(|err| EmitError(err.to_string()))
}

impl<'a> ser::Serializer for ValueWriter<'a> {
    type Ok = ();
    type Error = EmitError;
    type SerializeSeq = CollectionWriter<'a>;
    type SerializeTuple = CollectionWriter<'a>;
    type SerializeTupleStruct = CollectionWriter<'a>;
    type SerializeTupleVariant = Impossible<(), EmitError>;
    type SerializeMap = CollectionWriter<'a>;
    type SerializeStruct = CollectionWriter<'a>;
    type SerializeStructVariant = Impossible<(), EmitError>;

    fn serialize_bool(self, v: bool) -> Result<(), EmitError> {
        self.plain(if v { "true" } else { "false" })
    }
    fn serialize_i8(self, v: i8) -> Result<(), EmitError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), EmitError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), EmitError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), EmitError> {
        self.plain(&v.to_string())
    }
    fn serialize_i128(self, v: i128) -> Result<(), EmitError> {
        self.plain(&v.to_string())
    }
    fn serialize_u8(self, v: u8) -> Result<(), EmitError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), EmitError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), EmitError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<(), EmitError> {
        self.plain(&v.to_string())
    }
    fn serialize_u128(self, v: u128) -> Result<(), EmitError> {
        self.plain(&v.to_string())
    }
    fn serialize_f32(self, v: f32) -> Result<(), EmitError> {
        self.float(f64::from(v), || json_number(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), EmitError> {
        self.float(v, || json_number(v))
    }
    fn serialize_char(self, v: char) -> Result<(), EmitError> {
        self.string(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), EmitError> {
        self.string(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), EmitError> {
        use ser::SerializeSeq as _;
        let mut seq = self.collection(true);
        for byte in v {
            seq.serialize_element(byte)?;
        }
        seq.end()
    }
    fn serialize_none(self) -> Result<(), EmitError> {
        self.plain("null")
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), EmitError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), EmitError> {
        self.plain("null")
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), EmitError> {
        self.plain("null")
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), EmitError> {
        self.string(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), EmitError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _value: &T,
    ) -> Result<(), EmitError> {
        Err(unsupported(&format!(
            "the enum variant `{name}::{variant}`"
        )))
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<CollectionWriter<'a>, EmitError> {
        Ok(self.collection(true))
    }
    fn serialize_tuple(self, _len: usize) -> Result<CollectionWriter<'a>, EmitError> {
        Ok(self.collection(true))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<CollectionWriter<'a>, EmitError> {
        Ok(self.collection(true))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, EmitError> {
        Err(unsupported(&format!(
            "the enum variant `{name}::{variant}`"
        )))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<CollectionWriter<'a>, EmitError> {
        Ok(self.collection(false))
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<CollectionWriter<'a>, EmitError> {
        Ok(self.collection(false))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, EmitError> {
        Err(unsupported(&format!(
            "the enum variant `{name}::{variant}`"
        )))
    }
}

/// A block mapping or sequence being written. Nothing is written until the first
/// entry, so an empty one can still become `{}` or `[]`.
struct CollectionWriter<'a> {
    out: &'a mut String,
    empty: &'static str,
    opener: &'static str,
    /// The column of the entries' keys or dashes.
    indent: usize,
    inline_first: bool,
    entries: usize,
}

impl CollectionWriter<'_> {
    fn start_entry(&mut self) {
        if self.entries == 0 {
            self.out.push_str(self.opener);
            if !self.inline_first {
                push_indent(self.out, self.indent);
            }
        } else {
            push_indent(self.out, self.indent);
        }
        self.entries += 1;
    }

    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EmitError> {
        self.start_entry();
        self.out.push('-');
        value.serialize(ValueWriter {
            out: self.out,
            place: Place::SeqItem {
                indent: self.indent,
            },
        })
    }

    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EmitError> {
        value.serialize(ValueWriter {
            out: self.out,
            place: Place::MapValue {
                indent: self.indent,
            },
        })
    }

    fn finish(self) -> Result<(), EmitError> {
        if self.entries == 0 {
            self.out.push_str(self.empty);
        }
        Ok(())
    }
}

impl ser::SerializeSeq for CollectionWriter<'_> {
    type Ok = ();
    type Error = EmitError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EmitError> {
        self.item(value)
    }
    fn end(self) -> Result<(), EmitError> {
        self.finish()
    }
}

impl ser::SerializeTuple for CollectionWriter<'_> {
    type Ok = ();
    type Error = EmitError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EmitError> {
        self.item(value)
    }
    fn end(self) -> Result<(), EmitError> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for CollectionWriter<'_> {
    type Ok = ();
    type Error = EmitError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EmitError> {
        self.item(value)
    }
    fn end(self) -> Result<(), EmitError> {
        self.finish()
    }
}

impl ser::SerializeMap for CollectionWriter<'_> {
    type Ok = ();
    type Error = EmitError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), EmitError> {
        self.start_entry();
        key.serialize(KeyWriter {
            out: self.out,
            indent: self.indent,
        })
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EmitError> {
        self.value(value)
    }
    fn end(self) -> Result<(), EmitError> {
        self.finish()
    }
}

impl ser::SerializeStruct for CollectionWriter<'_> {
    type Ok = ();
    type Error = EmitError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), EmitError> {
        self.start_entry();
        push_key(self.out, key, self.indent);
        self.value(value)
    }
    fn end(self) -> Result<(), EmitError> {
        self.finish()
    }
}

/// Keys longer than this are written as explicit `? key` entries: libyaml's limit for
/// implicit keys (YAML allows 1024 characters), kept so the output stays the same.
const MAX_IMPLICIT_KEY: usize = 128;

/// Writes `key:` (the value follows) for a mapping entry at column `indent`.
fn push_key(out: &mut String, key: &str, indent: usize) {
    let style = key_style(key);
    if key.len() > MAX_IMPLICIT_KEY {
        out.push_str("? ");
        push_flow_scalar(out, key, style);
        out.push('\n');
        push_indent(out, indent);
        out.push(':');
    } else {
        push_flow_scalar(out, key, style);
        out.push(':');
    }
}

/// Writes a map key: a string, or a number, boolean or unit that reads back as one.
struct KeyWriter<'a> {
    out: &'a mut String,
    indent: usize,
}

impl KeyWriter<'_> {
    fn plain(self, text: &str) -> Result<(), EmitError> {
        self.out.push_str(text);
        self.out.push(':');
        Ok(())
    }
}

impl ser::Serializer for KeyWriter<'_> {
    type Ok = ();
    type Error = EmitError;
    type SerializeSeq = Impossible<(), EmitError>;
    type SerializeTuple = Impossible<(), EmitError>;
    type SerializeTupleStruct = Impossible<(), EmitError>;
    type SerializeTupleVariant = Impossible<(), EmitError>;
    type SerializeMap = Impossible<(), EmitError>;
    type SerializeStruct = Impossible<(), EmitError>;
    type SerializeStructVariant = Impossible<(), EmitError>;

    fn serialize_bool(self, v: bool) -> Result<(), EmitError> {
        self.plain(if v { "true" } else { "false" })
    }
    fn serialize_i8(self, v: i8) -> Result<(), EmitError> {
        self.plain(&v.to_string())
    }
    fn serialize_i16(self, v: i16) -> Result<(), EmitError> {
        self.plain(&v.to_string())
    }
    fn serialize_i32(self, v: i32) -> Result<(), EmitError> {
        self.plain(&v.to_string())
    }
    fn serialize_i64(self, v: i64) -> Result<(), EmitError> {
        self.plain(&v.to_string())
    }
    fn serialize_i128(self, v: i128) -> Result<(), EmitError> {
        self.plain(&v.to_string())
    }
    fn serialize_u8(self, v: u8) -> Result<(), EmitError> {
        self.plain(&v.to_string())
    }
    fn serialize_u16(self, v: u16) -> Result<(), EmitError> {
        self.plain(&v.to_string())
    }
    fn serialize_u32(self, v: u32) -> Result<(), EmitError> {
        self.plain(&v.to_string())
    }
    fn serialize_u64(self, v: u64) -> Result<(), EmitError> {
        self.plain(&v.to_string())
    }
    fn serialize_u128(self, v: u128) -> Result<(), EmitError> {
        self.plain(&v.to_string())
    }
    fn serialize_f32(self, v: f32) -> Result<(), EmitError> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), EmitError> {
        if v.is_finite() {
            let text = json_number(v)?;
            self.plain(&yaml_1_1_float(text))
        } else {
            Err(unsupported("a map key that is not a finite number"))
        }
    }
    fn serialize_char(self, v: char) -> Result<(), EmitError> {
        push_key(self.out, v.encode_utf8(&mut [0; 4]), self.indent);
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), EmitError> {
        push_key(self.out, v, self.indent);
        Ok(())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), EmitError> {
        Err(unsupported("a map key made of bytes"))
    }
    fn serialize_none(self) -> Result<(), EmitError> {
        self.plain("null")
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), EmitError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), EmitError> {
        self.plain("null")
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), EmitError> {
        self.plain("null")
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), EmitError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), EmitError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), EmitError> {
        Err(unsupported("a map key that is an enum variant with data"))
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, EmitError> {
        Err(unsupported("a map key that is a sequence"))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, EmitError> {
        Err(unsupported("a map key that is a tuple"))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, EmitError> {
        Err(unsupported("a map key that is a tuple"))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, EmitError> {
        Err(unsupported("a map key that is an enum variant with data"))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, EmitError> {
        Err(unsupported("a map key that is a map"))
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, EmitError> {
        Err(unsupported("a map key that is a struct"))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, EmitError> {
        Err(unsupported("a map key that is an enum variant with data"))
    }
}

/// How a string is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    /// A `|` block; `strip` (`|-`) when the string does not end in a newline.
    Literal {
        strip: bool,
    },
}

#[derive(Debug, PartialEq, Eq)]
/// What a scan of a string found, in the terms of libyaml's scalar analysis (whose
/// choices the output follows), plus what YAML 1.1 readers need on top.
struct Scan {
    /// Starts with an indicator, or holds `: ` or ` #`: cannot be plain.
    indicators: bool,
    /// A character that only a double-quoted scalar can carry (escaped).
    special: bool,
    /// `\n`.
    newline: bool,
    /// A line break other than `\n` (`\u{2028}`, `\u{2029}`; `\r` and `\u{85}` count as
    /// special): only double-quoted keeps it exact for every reader.
    other_break: bool,
    leading_space: bool,
    leading_break: bool,
    trailing_space: bool,
    trailing_break: bool,
    /// A space right after a line break, or right before one.
    break_space: bool,
    space_break: bool,
}

/// libyaml's printable set: what may appear unescaped in a YAML stream.
fn is_printable(c: char) -> bool {
    matches!(c, '\n' | ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && c != '\u{feff}'
}

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Space, tab, a line break, or NUL (libyaml's end of string).
fn is_blank_or_end(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => matches!(c, ' ' | '\t' | '\0') || is_break(c),
    }
}

fn scan(text: &str) -> Scan {
    let bytes = text.as_bytes();
    // Not `all`: a fold without early exit compiles to a few vector instructions.
    let visible_ascii = bytes
        .iter()
        .fold(true, |ok, b| ok & (b.wrapping_sub(b'!') <= b'~' - b'!'));
    if !bytes.is_empty() && visible_ascii {
        // Most strings in a manifest (names, paths, flags, hashes, templates) are
        // printable ASCII without spaces. Then no character is preceded or followed by a
        // blank except at the ends, so only the first and last character can make an
        // indicator, and there are no breaks, spaces or special characters.
        let first = bytes[0];
        let last = bytes[bytes.len() - 1];
        let indicators = text.starts_with("---")
            || text.starts_with("...")
            || matches!(
                first,
                b'#' | b','
                    | b'['
                    | b']'
                    | b'{'
                    | b'}'
                    | b'&'
                    | b'*'
                    | b'!'
                    | b'|'
                    | b'>'
                    | b'\''
                    | b'"'
                    | b'%'
                    | b'@'
                    | b'`'
            )
            || bytes.len() == 1 && matches!(first, b'?' | b':' | b'-')
            || last == b':';
        return Scan {
            indicators,
            ..Scan::QUIET
        };
    }
    scan_chars(text)
}

/// libyaml's analysis, character by character.
fn scan_chars(text: &str) -> Scan {
    let mut scan = Scan {
        indicators: text.starts_with("---") || text.starts_with("..."),
        ..Scan::QUIET
    };
    let mut preceded_by_blank = true;
    let mut previous_space = false;
    let mut previous_break = false;
    let mut chars = text.chars().peekable();
    let mut first = true;
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        let followed_by_blank = is_blank_or_end(next);
        let last = next.is_none();
        if first {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => scan.indicators = true,
                '?' | ':' | '-' if followed_by_blank => scan.indicators = true,
                _ => {}
            }
        } else if c == ':' && followed_by_blank || c == '#' && preceded_by_blank {
            scan.indicators = true;
        }
        if !is_printable(c) {
            scan.special = true;
        }
        if c == ' ' {
            scan.leading_space |= first;
            scan.trailing_space |= last;
            scan.break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            if c == '\n' {
                scan.newline = true;
            } else {
                scan.other_break = true;
            }
            scan.leading_break |= first;
            scan.trailing_break |= last;
            scan.space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_blank = is_blank_or_end(Some(c));
        first = false;
    }
    scan
}

impl Scan {
    /// Nothing found.
    const QUIET: Scan = Scan {
        indicators: false,
        special: false,
        newline: false,
        other_break: false,
        leading_space: false,
        leading_break: false,
        trailing_space: false,
        trailing_break: false,
        break_space: false,
        space_break: false,
    };

    fn plain_allowed(&self) -> bool {
        !(self.indicators
            || self.special
            || self.newline
            || self.other_break
            || self.leading_space
            || self.leading_break
            || self.trailing_space
            || self.trailing_break
            || self.break_space
            || self.space_break)
    }

    fn single_quoted_allowed(&self) -> bool {
        // A line break inside single quotes is folded by the reader; keep those
        // strings for double quotes, where `\n` is exact.
        !(self.special || self.newline || self.other_break || self.break_space || self.space_break)
    }
}

/// The style of a string written as a value.
fn value_style(text: &str) -> Style {
    let scan = scan(text);
    if scan.newline {
        // A literal block keeps multi-line text (scripts) readable. It is used only
        // where it reads back exactly without indentation or chomping indicators beyond
        // `-`: no leading space or break (the block's indentation is taken from its
        // first line), no trailing spaces on a line, at most one final newline.
        let literal = !(scan.special
            || scan.other_break
            || scan.leading_space
            || scan.leading_break
            || scan.trailing_space
            || scan.space_break
            || text.ends_with("\n\n"));
        return if literal {
            Style::Literal {
                strip: !scan.trailing_break,
            }
        } else {
            Style::DoubleQuoted
        };
    }
    flow_style(text, &scan)
}

/// The style of a string written as a mapping key: never a block.
fn key_style(text: &str) -> Style {
    let scan = scan(text);
    flow_style(text, &scan)
}

fn flow_style(text: &str, scan: &Scan) -> Style {
    if scan.plain_allowed() && !resolves_to_non_string(text) {
        Style::Plain
    } else if scan.single_quoted_allowed() {
        Style::SingleQuoted
    } else {
        Style::DoubleQuoted
    }
}

/// Writes `text` plain, single- or double-quoted (a literal block is written by the
/// caller, which knows the indentation).
fn push_flow_scalar(out: &mut String, text: &str, style: Style) {
    match style {
        Style::Plain => out.push_str(text),
        Style::SingleQuoted => {
            out.push('\'');
            let mut rest = text;
            while let Some(at) = rest.find('\'') {
                out.push_str(&rest[..=at]);
                out.push('\'');
                rest = &rest[at + 1..];
            }
            out.push_str(rest);
            out.push('\'');
        }
        Style::DoubleQuoted | Style::Literal { .. } => push_double_quoted(out, text),
    }
}

/// `text` in double quotes, with libyaml's escapes for everything that is not
/// printable, a line break, a byte order mark, `"` or `\`.
fn push_double_quoted(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        let escape = match c {
            '\0' => "\\0",
            '\u{7}' => "\\a",
            '\u{8}' => "\\b",
            '\t' => "\\t",
            '\n' => "\\n",
            '\u{b}' => "\\v",
            '\u{c}' => "\\f",
            '\r' => "\\r",
            '\u{1b}' => "\\e",
            '"' => "\\\"",
            '\\' => "\\\\",
            '\u{85}' => "\\N",
            '\u{a0}' => "\\_",
            '\u{2028}' => "\\L",
            '\u{2029}' => "\\P",
            c if is_printable(c) => {
                out.push(c);
                continue;
            }
            c => {
                let code = u32::from(c);
                // Writing to a String cannot fail.
                let _ = if code <= 0xff {
                    write!(out, "\\x{code:02X}")
                } else if code <= 0xffff {
                    write!(out, "\\u{code:04X}")
                } else {
                    write!(out, "\\U{code:08X}")
                };
                continue;
            }
        };
        out.push_str(escape);
    }
    out.push('"');
}

/// Whether some YAML reader, 1.1 or 1.2, resolves the plain scalar `text` to something
/// other than that string: null, a boolean, a number, a date, or YAML 1.1's merge
/// (`<<`) and value (`=`) keys. Errs on the side of quoting.
fn resolves_to_non_string(text: &str) -> bool {
    // Every such spelling starts with one of these; most strings are ruled out here.
    let Some(first) = text.bytes().next() else {
        return true;
    };
    if !matches!(
        first,
        b'0'..=b'9'
            | b'+'
            | b'-'
            | b'.'
            | b'~'
            | b'<'
            | b'='
            | b'n'
            | b'N'
            | b't'
            | b'T'
            | b'f'
            | b'F'
            | b'y'
            | b'Y'
            | b'o'
            | b'O'
    ) {
        return false;
    }
    matches!(
        text,
        "" | "~"
            | "null"
            | "Null"
            | "NULL"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | "yes"
            | "Yes"
            | "YES"
            | "no"
            | "No"
            | "NO"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
            | "y"
            | "Y"
            | "n"
            | "N"
            | "<<"
            | "="
    ) || looks_numeric(text)
        || starts_like_a_date(text)
}

/// A superset of the integers and floats of YAML 1.2's core schema and YAML 1.1
/// (`0x1F`, `0o17`, `0b101`, `017`, `1_000`, `1:30` in base 60, `.5`, `1.`, `1e3`,
/// `-.inf`, `.NaN`).
fn looks_numeric(text: &str) -> bool {
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    if matches!(body, ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let bytes = body.as_bytes();
    for (prefix, digit) in [
        (b"0x", u8::is_ascii_hexdigit as fn(&u8) -> bool),
        (b"0o", |b: &u8| (b'0'..=b'7').contains(b)),
        (b"0b", |b: &u8| *b == b'0' || *b == b'1'),
    ] {
        if let Some(rest) = bytes.strip_prefix(prefix) {
            if !rest.is_empty() && rest.iter().all(|b| digit(b) || *b == b'_') {
                return true;
            }
        }
    }
    // [0-9_]+ (: [0-9_]+)* (. [0-9_]*)? ([eE] [+-]? [0-9_]+)?, or the same starting at
    // the `.`; at least one digit or `_` before the exponent.
    let mut i = 0;
    let run = |i: &mut usize| {
        let start = *i;
        while *i < bytes.len() && (bytes[*i].is_ascii_digit() || bytes[*i] == b'_') {
            *i += 1;
        }
        *i - start
    };
    let mut mantissa = run(&mut i);
    while mantissa > 0 && i < bytes.len() && bytes[i] == b':' {
        i += 1;
        let group = run(&mut i);
        if group == 0 {
            return false;
        }
    }
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        mantissa += run(&mut i);
    }
    if mantissa == 0 {
        return false;
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        i += 1;
        if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
            i += 1;
        }
        if run(&mut i) == 0 {
            return false;
        }
    }
    i == bytes.len()
}

/// YAML 1.1 timestamps start `YYYY-M-D` (then optionally a time).
fn starts_like_a_date(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |from: usize, to: usize| {
        b.get(from..to)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    if !(digits(0, 4) && b.get(4) == Some(&b'-')) {
        return false;
    }
    // Month and day have one or two digits each.
    let mut i = 5;
    for part in 0..2 {
        let start = i;
        while i < b.len() && i - start < 2 && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
        if part == 0 {
            if b.get(i) != Some(&b'-') {
                return false;
            }
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    use serde::Serialize;
    use serde_json::{json, Value};

    use super::*;

    /// Pieces that tricky strings are built from: every YAML indicator, the YAML 1.1
    /// and 1.2 spellings of other types, breaks, control and non-ASCII characters.
    const FRAGMENTS: &[&str] = &[
        "",
        " ",
        "  ",
        "a",
        "Z",
        "0",
        "1",
        "-",
        "?",
        ":",
        ",",
        "[",
        "]",
        "{",
        "}",
        "#",
        "&",
        "*",
        "!",
        "|",
        ">",
        "'",
        "\"",
        "%",
        "@",
        "`",
        "\\",
        "/",
        ".",
        "_",
        "+",
        "=",
        "<<",
        "\t",
        "\n",
        "\n\n",
        "\r",
        "\r\n",
        "\0",
        "\u{7}",
        "\u{1b}",
        "\u{7f}",
        "\u{85}",
        "\u{a0}",
        "\u{2028}",
        "\u{2029}",
        "\u{feff}",
        "\u{fffe}",
        "\u{10ffff}",
        "é",
        "日本",
        "🙂",
        "{{workflow.name}}",
        "{{inputs.parameters.task-id}}",
        "yes",
        "No",
        "ON",
        "off",
        "y",
        "N",
        "~",
        "null",
        "NULL",
        "true",
        "False",
        ".inf",
        "-.Inf",
        ".nan",
        "0x1F",
        "0o7",
        "0b101",
        "017",
        "089",
        "1_000",
        "1e3",
        "1E+3",
        "1.5",
        ".5",
        "1.",
        "-1",
        "+12",
        "12:30",
        "1:20:30.5",
        "2024-01-01",
        "2024-1-1 10:00:00",
        "2001-12-14t21:59:43.10-05:00",
        "---",
        "...",
        ": ",
        " #",
        "- ",
        "? ",
        "key: value",
        "a # b",
        "{\"a\": [1, 2.5]}",
        "[1, 2]",
        "s3://bucket/pre fix",
        "x == 'y'",
        "%TAG",
        "@at",
        "!!str",
    ];

    /// A small deterministic generator (xorshift64), so every run tests the same strings.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Every fragment alone, then `count` strings of one to five fragments.
    fn tricky_strings(count: usize) -> Vec<String> {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut strings: Vec<String> = FRAGMENTS.iter().map(|s| (*s).to_owned()).collect();
        strings.push("k".repeat(MAX_IMPLICIT_KEY));
        strings.push("k".repeat(MAX_IMPLICIT_KEY + 1));
        strings.push("long key: ".repeat(40));
        for _ in 0..count {
            let parts = 1 + rng.below(5);
            let text: String = (0..parts)
                .map(|_| FRAGMENTS[rng.below(FRAGMENTS.len())])
                .collect();
            strings.push(text);
        }
        strings
    }

    /// One document that puts every string in every place: a mapping value, a key, a
    /// sequence item, a value inside a mapping inside a sequence, and deeper.
    fn document(strings: &[String]) -> Value {
        let mut keyed = serde_json::Map::new();
        let mut nested = Vec::new();
        for (i, text) in strings.iter().enumerate() {
            keyed.insert(text.clone(), json!(text));
            nested.push(json!({
                "name": text,
                (text.clone()): [text, {"inner": text, "list": [[text]]}],
                "n": i,
            }));
        }
        json!({
            "values": strings,
            "keyed": keyed,
            "nested": nested,
            "empty": {"map": {}, "list": [], "in list": [{}, []]},
            "scalars": [null, true, false, 0, -7, 18446744073709551615u64, 0.5, 1.0, -2.5e-8, 1e300],
        })
    }

    fn serde_norway_reads(text: &str) -> Value {
        match serde_norway::from_str(text) {
            Ok(value) => value,
            Err(err) => panic!("serde_norway cannot read the output: {err}\n{text}"),
        }
    }

    #[test]
    fn tricky_strings_round_trip_through_serde_norway() {
        let strings = tricky_strings(4000);
        let doc = document(&strings);
        let text = yaml(&doc).unwrap();
        let back = serde_norway_reads(&text);
        if back != doc {
            // Name the first string that did not come back, rather than two huge values.
            for s in &strings {
                let one = json!({ "v": s, (s.clone()): [s] });
                let one_text = yaml(&one).unwrap();
                assert_eq!(serde_norway_reads(&one_text), one, "{s:?} as\n{one_text}");
            }
            panic!("the document did not round-trip");
        }
    }

    #[test]
    fn tricky_strings_round_trip_through_pyyaml() {
        // PyYAML reads YAML 1.1: an unquoted `yes`, `1_000`, `12:30` or `2024-01-01`
        // would come back as a boolean, a number or a date (which `json` cannot even
        // print). The Argo tests already need python3 with PyYAML.
        let strings = tricky_strings(1500);
        let doc = document(&strings);
        let text = yaml(&doc).unwrap();
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import json, sys, yaml\n\
                 json.dump(yaml.safe_load(sys.stdin.buffer), sys.stdout, ensure_ascii=True)",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(text.as_bytes())
            .expect("python3 reads the document");
        let output = child.wait_with_output().expect("python3 finishes");
        assert!(
            output.status.success(),
            "PyYAML cannot read the output: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let back: Value = serde_json::from_slice(&output.stdout).expect("python3 prints JSON");
        if back != doc {
            let (Value::Object(back), Value::Object(doc)) = (&back, &doc) else {
                panic!("PyYAML read something else than a mapping");
            };
            for (key, value) in doc {
                assert_eq!(back.get(key), Some(value), "under `{key}`");
            }
            panic!("PyYAML read back a different document");
        }
    }

    #[test]
    fn other_types_are_quoted_in_every_yaml_version() {
        let quoted = [
            "",
            "~",
            "null",
            "Null",
            "true",
            "False",
            "yes",
            "No",
            "ON",
            "off",
            "y",
            "N",
            "<<",
            "=",
            "0",
            "-1",
            "+12",
            "017",
            "089",
            "0x1F",
            "0o7",
            "0b101",
            "1_000",
            "1e3",
            "1E+3",
            "1.5",
            ".5",
            "1.",
            "-.inf",
            ".NaN",
            "12:30",
            "1:20:30.5",
            "2024-01-01",
            "2024-1-1 10:00:00",
            "2001-12-14t21:59:43.10-05:00",
        ];
        for text in quoted {
            assert!(resolves_to_non_string(text), "{text:?}");
            let out = yaml(&BTreeMap::from([("k", text)])).unwrap();
            assert_eq!(out, format!("k: '{text}'\n"));
        }
        let plain = [
            "a",
            "0.1.0",
            "1.2.3",
            "v1",
            "1a",
            "0xZZ",
            "0x",
            ".",
            "..",
            "-",
            "e3",
            "1e",
            "12:",
            "2024-01",
            "3fa2c0ffee",
            "inf",
            "nan",
            "Yes please",
            "t",
            "_finished",
            "a:b",
            "a#b",
            "s3://bucket/prefix",
            "日本",
        ];
        for text in plain {
            let out = yaml(&BTreeMap::from([("k", text)])).unwrap();
            if text.starts_with('-') || text.ends_with(':') {
                assert_eq!(out, format!("k: '{text}'\n"), "an indicator");
            } else {
                assert_eq!(out, format!("k: {text}\n"));
            }
        }
    }

    #[test]
    fn strings_only_double_quotes_can_carry_are_escaped() {
        let cases = [
            ("tab\there", r#""tab\there""#),
            ("nul\0", r#""nul\0""#),
            ("bell\u{7}esc\u{1b}del\u{7f}", r#""bell\aesc\edel\x7F""#),
            ("cr\rlf", r#""cr\rlf""#),
            ("nel\u{85}nbsp\u{a0}x", r#""nel\Nnbsp\_x""#),
            ("ls\u{2028}ps\u{2029}", r#""ls\Lps\P""#),
            ("\u{feff}bom", r#""\uFEFFbom""#),
            ("\u{fffe}\u{10ffff}", "\"\\uFFFE\u{10ffff}\""),
            ("q\"b\\\tx", r#""q\"b\\\tx""#),
            ("trailing space \nnext", r#""trailing space \nnext""#),
            ("\nleading break", r#""\nleading break""#),
            (" leading space\nx", r#"" leading space\nx""#),
            ("two breaks\n\n", r#""two breaks\n\n""#),
        ];
        for (text, written) in cases {
            assert_eq!(yaml(&[text]).unwrap(), format!("- {written}\n"), "{text:?}");
        }
    }

    #[test]
    fn multi_line_strings_are_literal_blocks() {
        let doc = json!({"script": "import sys\n\nprint(sys.argv)\n", "flat": "a\n  b"});
        assert_eq!(
            yaml(&doc).unwrap(),
            "flat: |-\n  a\n    b\nscript: |\n  import sys\n\n  print(sys.argv)\n"
        );
        let list = vec![vec!["x\ny"]];
        assert_eq!(yaml(&list).unwrap(), "- - |-\n    x\n    y\n");
    }

    #[test]
    fn long_keys_are_explicit() {
        let key = "k".repeat(MAX_IMPLICIT_KEY + 1);
        let doc = BTreeMap::from([(key.clone(), vec![1, 2])]);
        let text = yaml(&doc).unwrap();
        assert_eq!(text, format!("? {key}\n:\n- 1\n- 2\n"));
        assert_eq!(serde_norway_reads(&text), json!({ key: [1, 2] }));
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Sample {
        api_version: &'static str,
        labels: BTreeMap<String, String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        absent: Option<u8>,
        steps: Vec<Step>,
        matrix: Vec<Vec<Value>>,
        empty_map: BTreeMap<String, String>,
        empty_list: Vec<u8>,
        unit: (),
        ratio: f64,
        tiny: f32,
        letter: char,
        kind: Kind,
        wrapped: Wrapped,
        pair: (u8, &'static str),
    }

    #[derive(Serialize)]
    struct Step {
        name: String,
        args: Vec<String>,
        env: BTreeMap<String, Value>,
        script: Option<String>,
    }

    #[derive(Serialize)]
    enum Kind {
        WorkflowTemplate,
    }

    #[derive(Serialize)]
    struct Wrapped(String);

    /// Fails naming the first line that differs, not with two whole documents.
    fn assert_same_text(ours: &str, theirs: &str) {
        for (n, (a, b)) in ours.lines().zip(theirs.lines()).enumerate() {
            assert_eq!(a, b, "line {}", n + 1);
        }
        assert_eq!(ours.lines().count(), theirs.lines().count());
        assert_eq!(ours, theirs);
    }

    #[test]
    fn layout_matches_serde_norway() {
        // The layout (and the quoting of ordinary strings) is serde_norway's, so the
        // documents written before and after the switch are the same bytes.
        let strings = [
            "start",
            "flowc-main",
            "/flowc/bin",
            "{{workflow.name}}",
            "'{{x}}' == 'y'",
            "{\"payload\": {\"run_id\": \"{{workflow.name}}\"}}",
            "1",
            "0.1.0",
            "",
            " == ",
            "a: b",
            "- x",
            "#c",
            "x #c",
            "é",
            "3fa2c0ffee",
            "python:3.12-slim",
            "tasks['a'].outputs.parameters['b']",
            "import sys\nprint(1)\n",
            "l1\nl2",
            "Where the raw events CSV lives",
            "s3://b/p",
            "--flow",
            "true",
            "null",
            "~",
            "1.5",
            "0x1F",
            "0o7",
            "017",
        ];
        let sample = Sample {
            api_version: "argoproj.io/v1alpha1",
            // serde_norway writes a multi-line key as an explicit `? |` block; this
            // writer double-quotes it on one line.
            labels: strings
                .iter()
                .filter(|s| !s.contains('\n'))
                .map(|s| ((*s).to_owned(), (*s).to_owned()))
                .collect(),
            skipped: None,
            absent: None,
            steps: strings
                .iter()
                .map(|s| Step {
                    name: (*s).to_owned(),
                    args: vec![(*s).to_owned(), "-c".to_owned()],
                    env: BTreeMap::from([
                        ((*s).replace('\n', " "), json!(s)),
                        ("count".to_owned(), json!(3)),
                        ("nested".to_owned(), json!({"a": [s, {"b": s}], "c": {}})),
                    ]),
                    script: s.contains('\n').then(|| (*s).to_owned()),
                })
                .collect(),
            matrix: vec![vec![json!(1), json!([]), json!({"k": [1, [2]]})], vec![]],
            empty_map: BTreeMap::new(),
            empty_list: vec![],
            unit: (),
            ratio: 0.25,
            tiny: 1.5e-7,
            letter: '#',
            kind: Kind::WorkflowTemplate,
            wrapped: Wrapped("w".to_owned()),
            pair: (7, "seven"),
        };
        let ours = yaml(&sample).unwrap();
        let theirs = serde_norway::to_string(&sample).unwrap();
        assert_same_text(&ours, &theirs);
        assert_eq!(
            yaml(&strings).unwrap(),
            serde_norway::to_string(&strings).unwrap()
        );
        let long_key = BTreeMap::from([("k".repeat(MAX_IMPLICIT_KEY + 1), "v")]);
        assert_eq!(
            yaml(&long_key).unwrap(),
            serde_norway::to_string(&long_key).unwrap()
        );
    }

    #[test]
    fn enum_variants_with_data_are_an_error_not_a_panic() {
        #[derive(Serialize)]
        enum Tagged {
            Newtype(u8),
        }
        let err = yaml(&Tagged::Newtype(1)).unwrap_err();
        assert!(err.contains("Tagged::Newtype"), "{err}");
        let key_err = yaml(&BTreeMap::from([(vec![1], 1)])).unwrap_err();
        assert!(key_err.contains("map key"), "{key_err}");
    }

    #[test]
    fn the_fast_scan_agrees_with_the_full_one() {
        let strings = tricky_strings(20_000);
        let mut fast = 0;
        for text in &strings {
            if text.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
                fast += 1;
            }
            assert_eq!(scan(text), scan_chars(text), "{text:?}");
        }
        assert!(fast > 1000, "only {fast} strings took the fast path");
    }

    #[test]
    fn a_stream_separates_documents() {
        let text = yaml_stream(&[BTreeMap::from([("a", 1)]), BTreeMap::from([("b", 2)])]).unwrap();
        assert_eq!(text, "---\na: 1\n---\nb: 2\n");
    }

    #[test]
    fn top_level_scalars_and_empty_collections() {
        assert_eq!(yaml("plain").unwrap(), "plain\n");
        let block = yaml("line 1\nline 2").unwrap();
        assert_eq!(block, "|-\n  line 1\n  line 2\n");
        assert_eq!(serde_norway_reads(&block), json!("line 1\nline 2"));
        assert_eq!(yaml(&BTreeMap::<u8, u8>::new()).unwrap(), "{}\n");
        assert_eq!(yaml(&Vec::<u8>::new()).unwrap(), "[]\n");
        assert_eq!(yaml(&f64::NAN).unwrap(), ".nan\n");
        assert_eq!(
            yaml(&[f64::INFINITY, f64::NEG_INFINITY]).unwrap(),
            "- .inf\n- -.inf\n"
        );
        // YAML 1.1 reads a float only with a `.` and a signed exponent.
        assert_eq!(
            yaml(&[1e300, -2.5e-8, 1.0, 123_456_789e20]).unwrap(),
            "- 1.0e+300\n- -2.5e-8\n- 1.0\n- 1.23456789e+28\n"
        );
    }
}
