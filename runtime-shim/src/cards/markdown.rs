//! A small Markdown renderer for the `Markdown` card component: the common block and
//! inline forms, with every piece of the user's text HTML-escaped.
//!
//! Supported: ATX headings (`#` … `######`), paragraphs, fenced code blocks (```` ``` ````
//! or `~~~`), bullet (`-`, `*`, `+`) and numbered (`1.`) lists, block quotes (`>`),
//! thematic breaks (`---`, `***`), and inline code, `**strong**`, `*emphasis*` (and the
//! `_` spellings), links `[text](url)` and hard line breaks (two trailing spaces).
//! Raw HTML is not passed through: it shows as text. Link targets are kept only for
//! `http`, `https` and `mailto` URLs and in-page anchors, so no `javascript:` URL can
//! reach the page.

use handlebars::html_escape as escape_html;

/// Renders `text` as HTML. Never fails: what is not Markdown shows as text.
pub(crate) fn to_html(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    render_blocks(&lines, &mut out, 0);
    out
}

/// Nesting depth of block quotes beyond which `>` is shown as text, so a hostile input
/// of thousands of `>` cannot exhaust the stack.
const MAX_DEPTH: usize = 16;

fn render_blocks(lines: &[&str], out: &mut String, depth: usize) {
    let mut i = 0;
    while i < lines.len() {
        let line = lines.get(i).copied().unwrap_or_default();
        let trimmed = line.trim_start();
        if trimmed.is_empty() {
            i += 1;
            continue;
        }
        if let Some(fence) = fence_of(trimmed) {
            i = code_block(lines, i, fence, out);
        } else if let Some((level, title)) = heading(trimmed) {
            out.push_str(&format!("<h{level}>{}</h{level}>\n", inline(title.trim())));
            i += 1;
        } else if is_rule(trimmed) {
            out.push_str("<hr>\n");
            i += 1;
        } else if trimmed.starts_with('>') && depth < MAX_DEPTH {
            let mut quoted = Vec::new();
            while let Some(next) = lines.get(i) {
                let next = next.trim_start();
                let Some(rest) = next.strip_prefix('>') else {
                    break;
                };
                quoted.push(rest.strip_prefix(' ').unwrap_or(rest));
                i += 1;
            }
            out.push_str("<blockquote>\n");
            render_blocks(&quoted, out, depth + 1);
            out.push_str("</blockquote>\n");
        } else if list_item(trimmed).is_some() {
            i = list(lines, i, out);
        } else {
            i = paragraph(lines, i, out);
        }
    }
}

/// The fence characters of a code fence line (```` ``` ```` or `~~~`, 3 or more).
fn fence_of(line: &str) -> Option<&str> {
    for marker in ["```", "~~~"] {
        if line.starts_with(marker) {
            let ch = marker.chars().next().unwrap_or('`');
            let len = line.chars().take_while(|c| *c == ch).count();
            return line.get(..len);
        }
    }
    None
}

fn code_block(lines: &[&str], start: usize, fence: &str, out: &mut String) -> usize {
    let info = lines
        .get(start)
        .map(|line| {
            line.trim_start()
                .get(fence.len()..)
                .unwrap_or_default()
                .trim()
        })
        .unwrap_or_default();
    let language = info.split_whitespace().next().unwrap_or_default();
    if language.is_empty() {
        out.push_str("<pre><code>");
    } else {
        out.push_str(&format!(
            "<pre><code class=\"language-{}\">",
            escape_html(language)
        ));
    }
    let mut i = start + 1;
    while let Some(line) = lines.get(i) {
        i += 1;
        if line.trim_start().starts_with(fence) {
            break;
        }
        out.push_str(&escape_html(line));
        out.push('\n');
    }
    out.push_str("</code></pre>\n");
    i
}

fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = line.get(level..)?;
    if !rest.is_empty() && !rest.starts_with(' ') && !rest.starts_with('\t') {
        return None;
    }
    // A closing run of `#` is decoration.
    let title = rest.trim_end().trim_end_matches('#');
    Some((level, title))
}

fn is_rule(line: &str) -> bool {
    let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
    compact.len() >= 3
        && ["-", "*", "_"]
            .iter()
            .any(|mark| compact.chars().all(|c| c.to_string() == *mark))
}

/// A list item's kind (`true` for numbered) and its text.
fn list_item(line: &str) -> Option<(bool, &str)> {
    for bullet in ["- ", "* ", "+ "] {
        if let Some(rest) = line.strip_prefix(bullet) {
            return Some((false, rest));
        }
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    if (1..=9).contains(&digits) {
        let rest = line.get(digits..)?;
        if let Some(text) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return Some((true, text));
        }
    }
    None
}

fn list(lines: &[&str], start: usize, out: &mut String) -> usize {
    let numbered = lines
        .get(start)
        .and_then(|line| list_item(line.trim_start()))
        .is_some_and(|(numbered, _)| numbered);
    let tag = if numbered { "ol" } else { "ul" };
    out.push_str(&format!("<{tag}>\n"));
    let mut i = start;
    let mut item: Option<String> = None;
    while let Some(line) = lines.get(i) {
        let trimmed = line.trim_start();
        match list_item(trimmed) {
            Some((kind, text)) if kind == numbered => {
                if let Some(done) = item.take() {
                    out.push_str(&format!("<li>{}</li>\n", inline(&done)));
                }
                item = Some(text.to_owned());
            }
            // A continuation line of the current item.
            None if !trimmed.is_empty() && line.starts_with([' ', '\t']) => {
                if let Some(text) = item.as_mut() {
                    text.push('\n');
                    text.push_str(trimmed);
                }
            }
            _ => break,
        }
        i += 1;
    }
    if let Some(done) = item {
        out.push_str(&format!("<li>{}</li>\n", inline(&done)));
    }
    out.push_str(&format!("</{tag}>\n"));
    i
}

fn paragraph(lines: &[&str], start: usize, out: &mut String) -> usize {
    let mut text = String::new();
    let mut i = start;
    while let Some(line) = lines.get(i) {
        let trimmed = line.trim_start();
        let interrupts = trimmed.is_empty()
            || fence_of(trimmed).is_some()
            || heading(trimmed).is_some()
            || trimmed.starts_with('>')
            || (i > start && (list_item(trimmed).is_some() || is_rule(trimmed)));
        if interrupts && i > start {
            break;
        }
        if i > start {
            text.push('\n');
        }
        text.push_str(line.trim());
        if line.ends_with("  ") {
            // A hard line break, kept as a marker `inline` turns into <br>.
            text.push('\u{0}');
        }
        i += 1;
    }
    out.push_str(&format!("<p>{}</p>\n", inline(&text)));
    i
}

/// Renders the inline forms of `text`, escaping everything else.
fn inline(text: &str) -> String {
    let mut out = String::new();
    inline_into(text, &mut out, 0);
    out
}

/// Nesting depth of emphasis and links beyond which delimiters are shown as text.
const MAX_INLINE_DEPTH: usize = 8;

fn inline_into(text: &str, out: &mut String, depth: usize) {
    let mut rest = text;
    let mut previous: Option<char> = None;
    while let Some(ch) = rest.chars().next() {
        // `_` inside a word (`snake_case_name`) is not emphasis, as in CommonMark.
        let intraword = ch == '_' && previous.is_some_and(char::is_alphanumeric);
        let consumed = match ch {
            '`' => code_span(rest, out),
            '*' | '_' if depth < MAX_INLINE_DEPTH && !intraword => emphasis(rest, ch, out, depth),
            '[' if depth < MAX_INLINE_DEPTH => link(rest, out, depth),
            '\u{0}' => {
                out.push_str("<br>");
                Some(1)
            }
            '\\' => {
                // A backslash escapes the next ASCII punctuation mark.
                match rest.chars().nth(1) {
                    Some(next) if next.is_ascii_punctuation() => {
                        out.push_str(&escape_html(&next.to_string()));
                        Some(1 + next.len_utf8())
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        let step = consumed.unwrap_or_else(|| {
            out.push_str(&escape_html(&ch.to_string()));
            ch.len_utf8()
        });
        previous = rest.get(..step).and_then(|taken| taken.chars().last());
        rest = rest.get(step..).unwrap_or_default();
    }
}

fn code_span(text: &str, out: &mut String) -> Option<usize> {
    let ticks = text.chars().take_while(|c| *c == '`').count();
    let fence = text.get(..ticks)?;
    let body = text.get(ticks..)?;
    let end = body.find(fence)?;
    let code = body.get(..end)?;
    out.push_str("<code>");
    out.push_str(&escape_html(code.trim()));
    out.push_str("</code>");
    Some(ticks + end + ticks)
}

fn emphasis(text: &str, mark: char, out: &mut String, depth: usize) -> Option<usize> {
    let strong = text.chars().nth(1) == Some(mark);
    let delimiter: String = std::iter::repeat_n(mark, if strong { 2 } else { 1 }).collect();
    let body_start = delimiter.len();
    let body = text.get(body_start..)?;
    // Emphasis opens only before a non-space and closes after one, as in CommonMark.
    if body.starts_with(char::is_whitespace) || body.is_empty() {
        return None;
    }
    let mut search = 0;
    loop {
        let found = body.get(search..)?.find(&delimiter)? + search;
        let inner = body.get(..found)?;
        let closes = !inner.is_empty() && !inner.ends_with(char::is_whitespace);
        // A single delimiter must not be half of a double one (`*a **b** c*`).
        let doubled = !strong && body.get(found + 1..).is_some_and(|r| r.starts_with(mark));
        if closes && !doubled {
            let tag = if strong { "strong" } else { "em" };
            out.push_str(&format!("<{tag}>"));
            inline_into(inner, out, depth + 1);
            out.push_str(&format!("</{tag}>"));
            return Some(body_start + found + delimiter.len());
        }
        search = found + if doubled { 2 } else { 1 };
    }
}

fn link(text: &str, out: &mut String, depth: usize) -> Option<usize> {
    let close = text.find("](")?;
    let label = text.get(1..close)?;
    let after = text.get(close + 2..)?;
    let end = after.find(')')?;
    let url = after.get(..end)?.trim();
    if label.contains('[') {
        return None;
    }
    if is_safe_url(url) {
        out.push_str(&format!("<a href=\"{}\">", escape_html(url)));
        inline_into(label, out, depth + 1);
        out.push_str("</a>");
    } else {
        // The text stays; the target does not.
        inline_into(label, out, depth + 1);
    }
    Some(close + 2 + end + 1)
}

fn is_safe_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    !url.is_empty()
        && !url.chars().any(char::is_whitespace)
        && (lower.starts_with("https://")
            || lower.starts_with("http://")
            || lower.starts_with("mailto:")
            || lower.starts_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_render() {
        let html = to_html("# Title\n\nSome *text* and **bold**.\n\n- a\n- b `c`\n\n1. one\n2. two\n\n> quoted\n\n---\n```py\nx < 1\n```");
        assert_eq!(
            html,
            "<h1>Title</h1>\n<p>Some <em>text</em> and <strong>bold</strong>.</p>\n\
             <ul>\n<li>a</li>\n<li>b <code>c</code></li>\n</ul>\n\
             <ol>\n<li>one</li>\n<li>two</li>\n</ol>\n\
             <blockquote>\n<p>quoted</p>\n</blockquote>\n<hr>\n\
             <pre><code class=\"language-py\">x &lt; 1\n</code></pre>\n"
        );
    }

    #[test]
    fn html_in_text_is_escaped_everywhere() {
        let html = to_html(
            "<script>alert(1)</script>\n# <img src=x onerror=alert(1)>\n- <b>\n`<i>`\n[<x>](https://e.com/\"onmouseover=\")",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(!html.contains("<i>"), "{html}");
        assert!(!html.contains("\"onmouseover"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn only_safe_links_keep_their_target() {
        assert_eq!(
            to_html("[docs](https://example.com/a?b=1&c=2)"),
            "<p><a href=\"https://example.com/a?b&#x3D;1&amp;c&#x3D;2\">docs</a></p>\n"
        );
        assert_eq!(to_html("[x](javascript:alert(1))"), "<p>x)</p>\n");
        assert_eq!(to_html("[x](JavaScript:alert)"), "<p>x</p>\n");
    }

    #[test]
    fn unmatched_delimiters_stay_text() {
        assert_eq!(
            to_html("2 * 3 = 6, a_b_c"),
            "<p>2 * 3 &#x3D; 6, a_b_c</p>\n"
        );
        assert_eq!(to_html("**open"), "<p>**open</p>\n");
        assert_eq!(to_html("``"), "<p>&#x60;&#x60;</p>\n");
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let quotes = ">".repeat(100_000);
        let html = to_html(&quotes);
        assert!(html.contains("&gt;"));
        let stars = "*a".repeat(50_000);
        let _ = to_html(&stars);
        let brackets = "[".repeat(5_000) + "x](https://e.com)";
        let _ = to_html(&brackets);
    }
}
