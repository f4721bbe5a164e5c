//! The code package's archive format: a plain POSIX ustar tar of regular files, written
//! and read here rather than with the `tar` crate.
//!
//! Why our own: the package needs exactly one entry type (a regular file with fixed
//! metadata) and a reader that refuses everything else, which is a hundred lines
//! either way; with a general-purpose crate the determinism (fixed mtime, uid, gid,
//! mode, no owner names, no PAX or GNU extensions) and the refusals (links, devices,
//! long-name extensions) would have to be configured and audited against its defaults
//! on every upgrade. The output is still an ordinary tar: `tar tf` lists it and
//! Python's `tarfile` reads it.
//!
//! Layout of one 512-byte header (POSIX.1-1988 ustar), as offsets into the block:
//! name 0..100, mode 100..108, uid 108..116, gid 116..124, size 124..136,
//! mtime 136..148, checksum 148..156, typeflag 156, linkname 157..257,
//! magic 257..263 (`ustar\0`), version 263..265 (`00`), uname 265..297,
//! gname 297..329, devmajor 329..337, devminor 337..345, prefix 345..500.

use std::ops::Range;

/// Size of a header and the unit every file's data is padded to.
pub(crate) const BLOCK: usize = 512;

const NAME: Range<usize> = 0..100;
const MODE: Range<usize> = 100..108;
const UID: Range<usize> = 108..116;
const GID: Range<usize> = 116..124;
const SIZE: Range<usize> = 124..136;
const MTIME: Range<usize> = 136..148;
const CHECKSUM: Range<usize> = 148..156;
const TYPEFLAG: usize = 156;
const LINKNAME: Range<usize> = 157..257;
const MAGIC: Range<usize> = 257..263;
const VERSION: Range<usize> = 263..265;
const PREFIX: Range<usize> = 345..500;

const USTAR_MAGIC: &[u8; 6] = b"ustar\0";
const USTAR_VERSION: &[u8; 2] = b"00";

/// Type flag of a regular file (`'0'`; pre-POSIX archives use NUL).
pub(crate) const REGULAR: u8 = b'0';

/// Largest size the 11 octal digits of the size field hold (8 GiB - 1).
const MAX_SIZE: u64 = 0o777_7777_7777;

/// Writes `value` as zero-padded octal filling `field` but its last byte, which is NUL.
fn put_octal(block: &mut [u8; BLOCK], field: Range<usize>, value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    if let Some(dest) = block.get_mut(field.start..field.start + digits) {
        dest.copy_from_slice(text.as_bytes().get(..digits).unwrap_or_default());
    }
    if let Some(last) = block.get_mut(field.end - 1) {
        *last = 0;
    }
}

fn put_bytes(block: &mut [u8; BLOCK], field: Range<usize>, value: &[u8]) {
    let len = value.len().min(field.len());
    if let Some(dest) = block.get_mut(field.start..field.start + len) {
        dest.copy_from_slice(value.get(..len).unwrap_or_default());
    }
}

/// Splits `path` into ustar's (prefix, name): the whole path as name when it fits in
/// 100 bytes, else at the `/` that leaves the longest prefix of at most 155 bytes and
/// a non-empty name of at most 100.
fn split_path(path: &str) -> Option<(&str, &str)> {
    if path.len() <= NAME.len() {
        return Some(("", path));
    }
    path.match_indices('/')
        .map(|(at, _)| at)
        .filter(|&at| at <= PREFIX.len())
        .filter_map(|at| Some((path.get(..at)?, path.get(at + 1..)?)))
        .rfind(|(_, name)| !name.is_empty() && name.len() <= NAME.len())
}

/// Whether `path` can be stored in a ustar header.
pub(crate) fn fits(path: &str) -> bool {
    split_path(path).is_some()
}

/// A header with the package's fixed metadata: mode 0644, uid and gid 0, mtime 0, no
/// owner names. `typeflag` and `linkname` are parameters only so that tests can build
/// the hostile archives the reader must refuse; the package writer always passes
/// [`REGULAR`] and no link. `None` when the path does not fit or the size is too large.
pub(crate) fn header(path: &str, size: u64, typeflag: u8, linkname: &str) -> Option<[u8; BLOCK]> {
    let (prefix, name) = split_path(path)?;
    if size > MAX_SIZE || linkname.len() > LINKNAME.len() {
        return None;
    }
    let mut block = [0u8; BLOCK];
    put_bytes(&mut block, NAME, name.as_bytes());
    put_octal(&mut block, MODE, 0o644);
    put_octal(&mut block, UID, 0);
    put_octal(&mut block, GID, 0);
    put_octal(&mut block, SIZE, size);
    put_octal(&mut block, MTIME, 0);
    block[TYPEFLAG] = typeflag;
    put_bytes(&mut block, LINKNAME, linkname.as_bytes());
    put_bytes(&mut block, MAGIC, USTAR_MAGIC);
    put_bytes(&mut block, VERSION, USTAR_VERSION);
    put_bytes(&mut block, PREFIX, prefix.as_bytes());
    // The checksum is computed with its own field read as eight spaces, and written as
    // six octal digits, NUL, space (the form every tar implementation accepts).
    put_bytes(&mut block, CHECKSUM, b"        ");
    let sum = checksum(&block);
    put_bytes(&mut block, CHECKSUM, format!("{sum:06o}\0 ").as_bytes());
    Some(block)
}

fn checksum(block: &[u8; BLOCK]) -> u64 {
    block.iter().map(|&byte| u64::from(byte)).sum()
}

/// Appends one regular file (header, data, padding) to `out`. `false` (and nothing
/// appended) when the path does not fit in a header.
pub(crate) fn append_file(out: &mut Vec<u8>, path: &str, data: &[u8]) -> bool {
    let Some(block) = header(path, data.len() as u64, REGULAR, "") else {
        return false;
    };
    out.extend_from_slice(&block);
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(BLOCK), 0);
    true
}

/// Ends an archive: two zero blocks.
pub(crate) fn finish(out: &mut Vec<u8>) {
    out.resize(out.len() + 2 * BLOCK, 0);
}

/// One entry of an archive, as its header describes it.
#[derive(Debug)]
pub(crate) struct Entry<'a> {
    /// The path as stored (prefix and name joined); not yet validated.
    pub(crate) path: String,
    pub(crate) typeflag: u8,
    pub(crate) data: &'a [u8],
}

/// Reads every entry of a ustar archive, checking each header's checksum and magic.
/// Entry types and paths are left to the caller to judge.
pub(crate) fn entries(archive: &[u8]) -> Result<Vec<Entry<'_>>, String> {
    let mut found = Vec::new();
    let mut offset = 0usize;
    loop {
        let Some(block) = archive.get(offset..offset + BLOCK) else {
            return Err(format!(
                "archive ends at byte {} without its end-of-archive blocks",
                archive.len()
            ));
        };
        let block: &[u8; BLOCK] = block
            .try_into()
            .map_err(|_| "internal: header block of the wrong size".to_owned())?;
        if block.iter().all(|&byte| byte == 0) {
            // The end marker; whatever follows (more zero padding) is ignored.
            return Ok(found);
        }
        let expected = parse_octal(block, CHECKSUM)
            .ok_or_else(|| format!("header at byte {offset} has an unreadable checksum"))?;
        let mut blank = *block;
        put_bytes(&mut blank, CHECKSUM, b"        ");
        if checksum(&blank) != expected {
            return Err(format!("header at byte {offset} fails its checksum"));
        }
        if block.get(MAGIC) != Some(&USTAR_MAGIC[..]) {
            return Err(format!(
                "header at byte {offset} is not a POSIX ustar header"
            ));
        }
        let size = parse_octal(block, SIZE)
            .ok_or_else(|| format!("header at byte {offset} has an unreadable size"))?;
        let name = field_text(block, NAME)
            .ok_or_else(|| format!("header at byte {offset} has a name that is not UTF-8"))?;
        let prefix = field_text(block, PREFIX)
            .ok_or_else(|| format!("header at byte {offset} has a prefix that is not UTF-8"))?;
        let path = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        };
        let start = offset + BLOCK;
        let data = usize::try_from(size)
            .ok()
            .and_then(|size| archive.get(start..start.checked_add(size)?))
            .ok_or_else(|| format!("entry `{path}` claims {size} bytes past the archive's end"))?;
        offset = start + data.len().next_multiple_of(BLOCK);
        found.push(Entry {
            path,
            typeflag: block[TYPEFLAG],
            data,
        });
    }
}

/// A numeric field: octal digits, optionally space-padded, ended by NUL or space.
fn parse_octal(block: &[u8; BLOCK], field: Range<usize>) -> Option<u64> {
    let text = block.get(field)?;
    let digits: Vec<u8> = text
        .iter()
        .copied()
        .skip_while(|&byte| byte == b' ')
        .take_while(|&byte| byte != 0 && byte != b' ')
        .collect();
    if digits.is_empty() || !digits.iter().all(|byte| (b'0'..=b'7').contains(byte)) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(&digits).ok()?, 8).ok()
}

/// A text field up to its first NUL.
fn field_text(block: &[u8; BLOCK], field: Range<usize>) -> Option<&str> {
    let bytes = block.get(field)?;
    let end = bytes
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(bytes.len());
    std::str::from_utf8(bytes.get(..end)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_has_fixed_metadata_and_a_valid_checksum() {
        let block = header("pkg/helper.py", 5, REGULAR, "").unwrap();
        assert_eq!(&block[NAME][..13], b"pkg/helper.py");
        assert_eq!(&block[MODE], b"0000644\0");
        assert_eq!(&block[UID], b"0000000\0");
        assert_eq!(&block[GID], b"0000000\0");
        assert_eq!(&block[SIZE], b"00000000005\0");
        assert_eq!(&block[MTIME], b"00000000000\0");
        assert_eq!(&block[MAGIC], b"ustar\0");
        assert!(block[265..345].iter().all(|&b| b == 0), "no owner names");
        let mut blank = block;
        put_bytes(&mut blank, CHECKSUM, b"        ");
        assert_eq!(parse_octal(&block, CHECKSUM), Some(checksum(&blank)));
    }

    #[test]
    fn long_paths_use_the_prefix_and_round_trip() {
        let dir = "d".repeat(120);
        let path = format!("{dir}/{}.py", "m".repeat(90));
        let mut archive = Vec::new();
        assert!(append_file(&mut archive, &path, b"x = 1\n"));
        finish(&mut archive);
        let read = entries(&archive).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].path, path);
        assert_eq!(read[0].data, b"x = 1\n");
        // No `/` leaves a name of at most 100 bytes, or the prefix would exceed 155.
        assert!(!fits(&"n".repeat(101)));
        assert!(!fits(&format!("{}/a.py", "p".repeat(156))));
    }

    #[test]
    fn data_is_padded_to_whole_blocks() {
        let mut archive = Vec::new();
        append_file(&mut archive, "a.txt", &[b'a'; 513]);
        append_file(&mut archive, "b.txt", b"");
        finish(&mut archive);
        assert_eq!(archive.len(), BLOCK * (1 + 2) + BLOCK + 2 * BLOCK);
        let read = entries(&archive).unwrap();
        let paths: Vec<&str> = read.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a.txt", "b.txt"]);
        assert_eq!(read[0].data.len(), 513);
    }

    #[test]
    fn damaged_archives_are_reported() {
        let mut archive = Vec::new();
        append_file(&mut archive, "a.py", b"print(1)\n");
        finish(&mut archive);

        let mut flipped = archive.clone();
        flipped[3] ^= 1;
        assert!(entries(&flipped).unwrap_err().contains("checksum"));

        let truncated = &archive[..2 * BLOCK];
        let err = entries(truncated).unwrap_err();
        assert!(err.contains("without its end-of-archive"), "{err}");

        let mut oversized = Vec::new();
        oversized.extend_from_slice(&header("a.py", 4096, REGULAR, "").unwrap());
        oversized.extend_from_slice(&[0u8; BLOCK]);
        let err = entries(&oversized).unwrap_err();
        assert!(err.contains("past the archive's end"), "{err}");
    }
}
