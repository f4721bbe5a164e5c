//! Docstrings: the text of a class's or step's docstring, cleaned the way Python's
//! `inspect.cleandoc` does, so `flowc inspect` shows what `help()` would.

/// Expand tabs to the next multiple of 8 columns, like `str.expandtabs()`.
fn expand_tabs(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut column = 0usize;
    for c in line.chars() {
        if c == '\t' {
            let spaces = 8 - column % 8;
            out.extend(std::iter::repeat_n(' ', spaces));
            column += spaces;
        } else {
            out.push(c);
            column += 1;
        }
    }
    out
}

/// Python's `inspect.cleandoc`: strip the first line's leading whitespace, remove the
/// common indentation of the following lines, and drop leading and trailing blank
/// lines. Returns `None` for a docstring that is only whitespace.
pub(crate) fn clean(doc: &str) -> Option<String> {
    let lines: Vec<String> = doc.split('\n').map(expand_tabs).collect();
    let margin = lines
        .iter()
        .skip(1)
        .filter(|l| !l.trim_start().is_empty())
        .map(|l| l.chars().count() - l.trim_start().chars().count())
        .min();
    let mut cleaned: Vec<String> = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if i == 0 {
            cleaned.push(line.trim_start().to_string());
        } else {
            cleaned.push(line.chars().skip(margin.unwrap_or(0)).collect());
        }
    }
    while cleaned.last().is_some_and(|l| l.is_empty()) {
        cleaned.pop();
    }
    let first = cleaned.iter().position(|l| !l.is_empty())?;
    let doc = cleaned[first..].join("\n");
    (!doc.trim().is_empty()).then_some(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_like_inspect_cleandoc() {
        assert_eq!(clean("One line.").as_deref(), Some("One line."));
        assert_eq!(
            clean("Summary.\n\n    Details here.\n      indented more.\n    ").as_deref(),
            Some("Summary.\n\nDetails here.\n  indented more.")
        );
        assert_eq!(
            clean("\n    Starts on the second line.\n    Second.\n").as_deref(),
            Some("Starts on the second line.\nSecond.")
        );
        assert_eq!(clean("\tTabbed\n\tbody").as_deref(), Some("Tabbed\nbody"));
        assert_eq!(clean("   \n  \n"), None);
        assert_eq!(clean(""), None);
    }
}
