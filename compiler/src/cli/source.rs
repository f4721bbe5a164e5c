//! Reading flow files, with error messages that name the file and say what is wrong.

use std::io;
use std::path::Path;

/// A flow file read into memory.
#[derive(Debug)]
pub(crate) struct SourceFile {
    /// The path as the user wrote it; diagnostics and the IR name the file this way.
    pub(crate) path: String,
    pub(crate) text: String,
}

/// Read `path` as UTF-8 text. The error is a complete message for the user, e.g.
/// `cannot read flow.py: No such file or directory`.
pub(crate) fn read(path: &Path) -> Result<SourceFile, String> {
    let shown = path.to_string_lossy().into_owned();
    let fail = |why: String| format!("cannot read {shown}: {why}");
    // Opening a directory succeeds on some platforms and fails with a vague error on
    // others, so it is caught first with a message of its own.
    if path.is_dir() {
        return Err(fail("Is a directory".to_string()));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(describe(&e)))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "not valid UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    Ok(SourceFile { path: shown, text })
}

/// The OS's description of an I/O error without Rust's ` (os error N)` suffix, which
/// means nothing to a user.
fn describe(error: &io::Error) -> String {
    let text = error.to_string();
    match (error.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(cut)) => text[..cut].to_string(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("flowc-source-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch directory");
        dir
    }

    #[test]
    fn reads_utf8_text() {
        let dir = scratch("ok");
        let path = dir.join("flow.py");
        std::fs::write(&path, "x = 'é'\n").expect("write");
        let file = read(&path).expect("readable");
        assert_eq!(file.text, "x = 'é'\n");
        assert_eq!(file.path, path.to_string_lossy());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn explains_why_a_file_cannot_be_read() {
        let dir = scratch("bad");
        let missing = dir.join("missing.py");
        assert_eq!(
            read(&missing).unwrap_err(),
            format!(
                "cannot read {}: No such file or directory",
                missing.display()
            )
        );
        assert_eq!(
            read(&dir).unwrap_err(),
            format!("cannot read {}: Is a directory", dir.display())
        );
        let binary = dir.join("binary.py");
        std::fs::write(&binary, b"ok\xff\xfe").expect("write");
        assert_eq!(
            read(&binary).unwrap_err(),
            format!(
                "cannot read {}: not valid UTF-8 (invalid byte at offset 2)",
                binary.display()
            )
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
