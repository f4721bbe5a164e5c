//! Blanking comments before parsing: tree-sitter-python's external scanner re-reads
//! every following comment line at each newline, so a run of comment lines costs time
//! quadratic in its length (20,000 lines take over a minute). Whitespace lines cost
//! nothing, so the parser is handed a copy of the file in which every comment is
//! replaced by spaces.
//!
//! The copy has the same length and the same bytes everywhere but inside comments, so
//! tree positions are valid in the original text, which is what spans, snippets and
//! deferred values are read from. Nothing in the frontend reads comments from the tree.
//!
//! A `#` is blanked only when this lexer is certain it starts a comment in the way
//! tree-sitter lexes the file: it follows string state across the whole file (quotes,
//! triple quotes, prefixes, backslashes, f-string replacement fields). Where it cannot
//! be certain (a replacement field holding quotes or a `#`, an unterminated string, a
//! stray backslash or backtick, a NUL byte) it stops and leaves the rest of the file as
//! written: such a file is parsed more slowly, never differently.

use std::borrow::Cow;

/// `text` with every comment replaced by spaces, up to the first place where the lexer
/// cannot be sure what is a comment. Borrowed when there is nothing to blank.
pub(crate) fn blank(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    // tree-sitter ends a comment at a NUL byte, Python does not: the two views of what
    // follows differ, so such (hostile) files are left alone.
    if !bytes.contains(&b'#') || bytes.contains(&0) {
        return Cow::Borrowed(text);
    }
    let comments = comment_ranges(bytes);
    if comments.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = bytes.to_vec();
    for (start, end) in comments {
        if let Some(range) = out.get_mut(start..end) {
            range.fill(b' ');
        }
    }
    // Each range runs from an ASCII `#` to just before an ASCII line end (or the end of
    // the text), so only whole characters are replaced and the copy is valid UTF-8.
    match String::from_utf8(out) {
        Ok(blanked) => Cow::Owned(blanked),
        Err(_) => Cow::Borrowed(text),
    }
}

/// How a string literal ends and what is special inside it.
#[derive(Debug, Clone, Copy)]
struct StringKind {
    quote: u8,
    triple: bool,
    /// An f-string (or t-string): `{` opens a replacement field.
    format: bool,
}

/// Where the lexer is inside an f-string replacement field.
#[derive(Debug, Clone, Copy)]
enum Field {
    /// The expression, with the count of brackets open inside it.
    Expr { depth: usize },
    /// The format specification after `:`, literal text with nested fields.
    Spec,
}

/// Why lexing stopped early: from here on the lexer cannot be sure what is a comment.
struct Unsure;

/// The byte ranges of the comments the lexer is sure of, `#` included, line end not.
fn comment_ranges(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut lexer = Lexer {
        bytes,
        pos: 0,
        comments: Vec::new(),
    };
    // Stopping early keeps the comments found so far: everything before the uncertain
    // place was lexed from a known state.
    let _ = lexer.run();
    lexer.comments
}

struct Lexer<'b> {
    bytes: &'b [u8],
    pos: usize,
    comments: Vec<(usize, usize)>,
}

impl Lexer<'_> {
    fn peek(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.pos + offset).copied()
    }

    /// Code outside strings, to the end of the text.
    fn run(&mut self) -> Result<(), Unsure> {
        while let Some(b) = self.peek(0) {
            match b {
                b'#' => self.comment(),
                b'\'' | b'"' => {
                    let kind = self.string_kind(b)?;
                    self.string(kind, None)?;
                }
                b'\\' => {
                    // Only a line continuation is valid outside a string.
                    self.pos += 1;
                    match (self.peek(0), self.peek(1)) {
                        (None, _) => {}
                        (Some(b'\n'), _) => self.pos += 1,
                        (Some(b'\r'), Some(b'\n')) => self.pos += 2,
                        _ => return Err(Unsure),
                    }
                }
                // tree-sitter-python reads Python 2 backtick strings; Python 3 has none.
                b'`' => return Err(Unsure),
                _ => self.pos += 1,
            }
        }
        Ok(())
    }

    /// A comment from `#` to the end of the line; a `\r` just before the `\n` stays.
    fn comment(&mut self) {
        let start = self.pos;
        let rest = &self.bytes[start..];
        let line_end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.bytes.len(), |i| start + i);
        let end = if line_end > start && self.bytes.get(line_end - 1) == Some(&b'\r') {
            line_end - 1
        } else {
            line_end
        };
        self.comments.push((start, end.max(start)));
        self.pos = line_end;
    }

    /// The kind of the string whose opening quote is at `pos`, from its prefix (the
    /// word just before the quote) and the quotes that follow.
    fn string_kind(&self, quote: u8) -> Result<StringKind, Unsure> {
        let prefix_start = self.bytes[..self.pos]
            .iter()
            .rposition(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80))
            .map_or(0, |i| i + 1);
        let prefix = &self.bytes[prefix_start..self.pos];
        // A word before a quote is a prefix only if made of prefix letters (tree-sitter
        // accepts them in any combination); `x"..."` is not Python, and how the parser
        // recovers from it is not something to guess.
        if !prefix.iter().all(|b| b"rRbBuUfFtT".contains(b)) {
            return Err(Unsure);
        }
        Ok(StringKind {
            quote,
            triple: self.peek(1) == Some(quote) && self.peek(2) == Some(quote),
            format: prefix.iter().any(|b| b"fFtT".contains(b)),
        })
    }

    /// A string literal from its opening quote(s) to past its closing ones. `outer` is
    /// the quote of the f-string whose replacement field holds this one, if any.
    fn string(&mut self, kind: StringKind, outer: Option<u8>) -> Result<(), Unsure> {
        let width = if kind.triple { 3 } else { 1 };
        self.pos += width;
        loop {
            let Some(b) = self.peek(0) else {
                // Unterminated at the end of the text: nothing follows to misread.
                return Ok(());
            };
            match b {
                b'\\' => {
                    // An escaped character never ends the string, raw or not; a brace
                    // after a backslash still opens or closes a field in an f-string.
                    self.pos += 1;
                    match (self.peek(0), self.peek(1)) {
                        (Some(b'{' | b'}'), _) if kind.format => {}
                        (Some(b'\r'), Some(b'\n')) => self.pos += 2,
                        (Some(_), _) => self.pos += 1,
                        (None, _) => {}
                    }
                }
                b'\n' if !kind.triple => return Err(Unsure),
                q if q == kind.quote => {
                    if !kind.triple {
                        self.pos += 1;
                        return Ok(());
                    }
                    if self.peek(1) == Some(q) && self.peek(2) == Some(q) {
                        self.pos += 3;
                        return Ok(());
                    }
                    self.pos += 1;
                }
                b'{' if kind.format => {
                    if self.peek(1) == Some(b'{') {
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                        self.field(kind, outer)?;
                    }
                }
                b'}' if kind.format => {
                    if self.peek(1) == Some(b'}') {
                        self.pos += 2;
                    } else {
                        return Err(Unsure);
                    }
                }
                _ => self.pos += 1,
            }
        }
    }

    /// An f-string replacement field, after its `{`, to past its `}`. A string in the
    /// field is followed when its quote differs from every enclosing string's, as every
    /// Python version requires (`f"{', '.join(xs)}"`); the same quote again (Python
    /// 3.12 allows it), a `#` or a backslash are where Python versions and the parser
    /// may differ: the lexer stops there. With two quote characters, nesting ends at
    /// two strings, so the recursion is bounded.
    fn field(&mut self, kind: StringKind, outer: Option<u8>) -> Result<(), Unsure> {
        let mut stack = vec![Field::Expr { depth: 0 }];
        while let Some(top) = stack.last_mut() {
            let Some(b) = self.peek(0) else {
                return Err(Unsure);
            };
            self.pos += 1;
            // The parser takes a format specification to the end of the line at most.
            if b == b'\n' && (!kind.triple || matches!(top, Field::Spec)) {
                return Err(Unsure);
            }
            match top {
                Field::Expr { depth } => match b {
                    b'\'' | b'"' if b != kind.quote && outer.is_none() => {
                        // Lexed from its opening quote, prefix included.
                        self.pos -= 1;
                        let nested = self.string_kind(b)?;
                        if nested.triple && !kind.triple {
                            return Err(Unsure);
                        }
                        self.string(nested, Some(kind.quote))?;
                    }
                    b'\'' | b'"' | b'#' | b'\\' | b'`' => return Err(Unsure),
                    b'(' | b'[' | b'{' => *depth += 1,
                    b')' | b']' => *depth = depth.checked_sub(1).ok_or(Unsure)?,
                    b'}' if *depth == 0 => {
                        stack.pop();
                    }
                    b'}' => *depth -= 1,
                    b':' if *depth == 0 => *top = Field::Spec,
                    _ => {}
                },
                Field::Spec => match b {
                    b'{' => stack.push(Field::Expr { depth: 0 }),
                    b'}' => {
                        stack.pop();
                    }
                    _ => {}
                },
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The text with comments blanked, and the check that only comments changed.
    fn blanked(text: &str) -> String {
        let out = blank(text).into_owned();
        assert_eq!(out.len(), text.len(), "byte length changed");
        for (i, (a, b)) in text.bytes().zip(out.bytes()).enumerate() {
            assert!(a == b || b == b' ', "byte {i} became {b:?}, not a space");
            assert!(a != b'\n' || b == a, "a newline was blanked at {i}");
        }
        out
    }

    #[test]
    fn comments_after_code_and_on_their_own_lines_are_blanked() {
        assert_eq!(
            blanked("x = 1  # one\n# two\n    # three\ny = 2\n"),
            "x = 1       \n     \n           \ny = 2\n"
        );
        assert_eq!(blanked("# no newline at the end"), " ".repeat(23));
        assert_eq!(blanked("#\n#\n"), " \n \n");
    }

    #[test]
    fn text_without_comments_is_borrowed() {
        assert!(matches!(blank("x = '#'\n"), Cow::Borrowed(_)));
        assert!(matches!(blank("x = 1\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn hashes_inside_strings_are_kept() {
        for text in [
            "x = '#'  # c\n",
            "x = \"#\"  # c\n",
            "x = 'it\\'s # here'  # c\n",
            "x = \"a \\\" # b\"  # c\n",
            "x = r'\\' # kept'  # c\n",
            "x = b'# bytes'  # c\n",
            "x = Rb\"# raw bytes\"  # c\n",
            "x = u'# unicode'  # c\n",
        ] {
            let out = blanked(text);
            let code_end = text.rfind("  # c").expect("marker");
            assert_eq!(&out[..code_end], &text[..code_end], "{text:?}");
            assert_eq!(out[code_end..].trim_end(), "", "{text:?}");
        }
    }

    #[test]
    fn triple_quoted_strings_span_lines() {
        let text = "x = \"\"\"\n# not a comment\n' still \" inside\n\"\"\"  # comment\n\
                    y = '''a\n# kept\n'''\n";
        let out = blanked(text);
        assert!(out.contains("# not a comment"));
        assert!(out.contains("# kept"));
        assert!(!out.contains("# comment"));
        // A docstring is a string: its `#` stays for the parser and the docstring reader.
        let doc = "def f():\n    \"\"\"Use # sparingly.\"\"\"\n    # body comment\n";
        let out = blanked(doc);
        assert!(out.contains("Use # sparingly."));
        assert!(!out.contains("body comment"));
        // Four quotes: the string ends at the first three, the fourth opens another.
        let out = blanked("x = \"\"\"a\"\"\"\"b # in\"  # out\n");
        assert!(out.contains("b # in"));
        assert!(!out.contains("out"));
    }

    #[test]
    fn line_continuations_inside_and_outside_strings() {
        let text = "x = 'a\\\n# in string' + \\\n    1  # out\n";
        let out = blanked(text);
        assert!(out.contains("# in string"));
        assert!(!out.contains("out"));
        let crlf = "x = 'a\\\r\n# in string' + \\\r\n    1  # out\r\n";
        let out = blanked(crlf);
        assert!(out.contains("# in string"));
        assert!(out.ends_with("1       \r\n"), "{out:?}");
    }

    #[test]
    fn f_strings_with_simple_fields_are_followed() {
        let text = "x = f'{a} # {b!r:>{width}} {{#}} {c[0]:#x}'  # out\n";
        let out = blanked(text);
        let code_end = text.find("  # out").expect("marker");
        assert_eq!(&out[..code_end], &text[..code_end]);
        assert!(!out.contains("out"));
        // Strings in a field with the other quote, as every Python version allows.
        let nested = "x = f\"{', '.join(xs)} # in {d['#']!r:>{w}}\"  # out\n";
        let out = blanked(nested);
        let code_end = nested.find("  # out").expect("marker");
        assert_eq!(&out[..code_end], &nested[..code_end]);
        assert!(!out.contains("out"));
        let triple = "x = f\"\"\"{\n  a +\n  b} # in\n\"\"\"  # out\n";
        let out = blanked(triple);
        assert!(out.contains("# in"));
        assert!(!out.contains("out"));
    }

    #[test]
    fn uncertain_places_stop_the_blanking() {
        // A nested string in a field (Python 3.12 allows the same quote again).
        let text = "# before\nx = f\"{d[\"k\"]} # in\"  # after\n";
        let out = blanked(text);
        assert!(out.starts_with("        \n"));
        assert!(out.ends_with("# in\"  # after\n"));
        // A comment inside a multi-line field.
        let text = "# before\nx = f'''{a # c\n}'''  # after\n";
        assert!(blanked(text).ends_with("# after\n"));
        // An unterminated string, a stray backslash, a backtick, a word before a quote.
        for tail in [
            "x = 'open\n# after\n",
            "x = 1 \\ 2  # after\n",
            "x = `1`  # after\n",
            "x = w'a'  # after\n",
        ] {
            let text = format!("# before\n{tail}");
            let out = blanked(&text);
            assert!(out.starts_with("        \n"), "{text:?}");
            assert!(out.ends_with("# after\n"), "{text:?}");
        }
        // NUL bytes: tree-sitter ends comments there, so nothing is blanked.
        assert!(matches!(blank("# a\0b\nx = 1\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn crlf_and_non_ascii_comments_keep_length_and_validity() {
        let (first, second) = ("# Länder 🌍 日本", "# ✓");
        let text = format!("x = 1  {first}\r\ny = 'é#'  {second}\r\n");
        let out = blanked(&text);
        let expected = format!(
            "x = 1  {}\r\ny = 'é#'  {}\r\n",
            " ".repeat(first.len()),
            " ".repeat(second.len())
        );
        assert_eq!(out, expected);
        // A lone `\r` does not end a comment for tree-sitter: it is blanked with it.
        assert_eq!(blanked("# a\rb\nx\n"), "     \nx\n");
    }

    #[test]
    fn unterminated_string_at_end_of_text_is_fine() {
        assert_eq!(blanked("# c\nx = '''open # in"), "   \nx = '''open # in");
    }

    /// The tree as the frontend sees it: every node but comments, by kind, with the
    /// byte range of each token. Inner nodes may end earlier once a trailing comment is
    /// blank; their tokens, and so every span the frontend reports, may not move.
    fn shape(tree: &tree_sitter::Tree) -> Vec<(u16, Option<(usize, usize)>)> {
        let mut out = Vec::new();
        let mut cursor = tree.walk();
        loop {
            let node = cursor.node();
            let comment = node.is_extra() && node.kind() == "comment";
            if !comment {
                // A module of comments alone has no tokens left once they are blank.
                let token = node.child_count() == 0 && node.parent().is_some();
                let range = token.then(|| (node.start_byte(), node.end_byte()));
                out.push((node.kind_id(), range));
            }
            if !comment && cursor.goto_first_child() {
                continue;
            }
            while !cursor.goto_next_sibling() {
                if !cursor.goto_parent() {
                    return out;
                }
            }
        }
    }

    /// Parses `text` as written and blanked: the trees must agree but for comments.
    fn assert_same_tree(name: &str, text: &str) {
        let mut parser = tree_sitter::Parser::new();
        parser
            .set_language(&tree_sitter_python::LANGUAGE.into())
            .expect("language");
        let written = parser.parse(text, None).expect("tree");
        let blanked = crate::frontend::parse_tree(text).expect("tree");
        assert!(
            shape(&written) == shape(&blanked),
            "{name}: blanking comments changed the tree"
        );
    }

    #[test]
    fn blanking_changes_no_tree_but_for_comments() {
        assert_same_tree(
            "inline",
            "class A:\n    def f(self):\n        pass\n        # deeper\n    # class level\n\
             # module level\n    x = 1  # after code\n\n\
             def g():  # on the def\n    # first in block\n    return [1,  # in brackets\n\
             2]\n# trailing\n",
        );
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for dir in ["fixtures", "examples", "runtime-shim/src/python", "tests"] {
            python_files(&root.join(dir), &mut files);
        }
        assert!(files.len() > 20, "found only {} Python files", files.len());
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable fixture");
            assert_same_tree(&file.display().to_string(), &text);
        }
    }

    fn python_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            if path.is_dir() {
                python_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "py") {
                out.push(path);
            }
        }
    }

    #[test]
    fn many_comment_lines_parse_quickly() {
        let text = format!("{}x = 1\n", "# a comment line\n".repeat(20_000));
        let tree = crate::frontend::parse_tree(&text).expect("tree");
        assert!(!tree.root_node().has_error());
        assert_eq!(tree.root_node().named_child_count(), 1);
    }
}
