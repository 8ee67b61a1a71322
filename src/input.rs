//! Reading input files with a size limit: a snapshot, baseline, allowlist or
//! probe-names file may be anything (`/dev/zero`, a FIFO, a huge file), and
//! reading one must neither run forever nor use unbounded memory. Every
//! file semleak reads as input goes through [`read_capped`].

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

const MIB: u64 = 1024 * 1024;

/// How much of one kind of input is read at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub bytes: u64,
    /// The kind of input, for the message ("snapshots").
    pub what: &'static str,
}

/// The largest snapshot `analyze` reads (64 MiB; a busy host's snapshot is
/// a few MiB).
pub const SNAPSHOT_LIMIT: Limit = Limit {
    bytes: 64 * MIB,
    what: "snapshots",
};
/// The largest baseline, allowlist or probe-names file read (16 MiB).
pub const SETTINGS_LIMIT: Limit = Limit {
    bytes: 16 * MIB,
    what: "baseline, allowlist and probe-names files",
};

/// Input longer than its limit: carried as the source of an
/// [`io::Error`] (kind `InvalidData`), so callers' read errors name the
/// path as they do for any other failure to read.
#[derive(Debug, thiserror::Error)]
#[error("larger than {} (the limit for {})", shown_size(limit.bytes), limit.what)]
pub struct TooLarge {
    pub limit: Limit,
}

/// `67108864` → `64 MiB`; other sizes in bytes.
fn shown_size(bytes: u64) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Read all of `reader`, but at most `limit.bytes`: more is an error
/// (`InvalidData` holding [`TooLarge`]), found after reading one byte more.
pub fn read_capped_from(reader: impl Read, limit: Limit) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .take(limit.bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit.bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            TooLarge { limit },
        ));
    }
    Ok(bytes)
}

/// Read the file at `path` (`-` with `stdin_dash`: standard input), at
/// most `limit` bytes.
pub fn read_capped(path: &Path, limit: Limit, stdin_dash: bool) -> io::Result<Vec<u8>> {
    if stdin_dash && path.as_os_str() == "-" {
        return read_capped_from(io::stdin().lock(), limit);
    }
    let file = open_input(path)?;
    let is_fifo = file.metadata()?.file_type().is_fifo();
    let bytes = read_capped_from(&file, limit)?;
    if is_fifo && bytes.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, EmptyFifo));
    }
    Ok(bytes)
}

/// A FIFO that gave end-of-file before any byte: what a named pipe with no
/// writer reads as once its open no longer waits for one.
#[derive(Debug, thiserror::Error)]
#[error("is a FIFO and gave no data (no writer?): give a regular file")]
pub struct EmptyFifo;

/// Open an input without waiting for anything.
///
/// A plain `open(2)` of a FIFO blocks until some process opens it for
/// writing, forever if none does. With `O_NONBLOCK` the open returns at
/// once; the flag is then cleared again so that reads wait for data as
/// usual: a FIFO or pipe with a writer (a shell's `<(cmd)`, `/dev/stdin`)
/// is read whole, up to the limit, and one with no writer reads as
/// end-of-file at once (Linux `pipe_read`, POSIX `read` on a FIFO with no
/// writer). Character and block devices are read the same way, within the
/// limit (`/dev/zero` is "larger than …", `/dev/null` is empty).
fn open_input(path: &Path) -> io::Result<File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl F_GETFL/F_SETFL on a descriptor this function owns
    // (`file` lives until the end of the function); no memory is passed.
    let cleared = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) == 0
    };
    if !cleared {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

/// [`read_capped`] as UTF-8 text (`InvalidData` when it is not).
pub fn read_capped_text(path: &Path, limit: Limit, stdin_dash: bool) -> io::Result<String> {
    String::from_utf8(read_capped(path, limit, stdin_dash)?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(bytes: u64) -> Limit {
        Limit {
            bytes,
            what: "tests",
        }
    }

    #[test]
    fn input_up_to_the_limit_is_read_whole() {
        assert_eq!(read_capped_from(&b"12345"[..], limit(5)).unwrap(), b"12345");
        assert_eq!(read_capped_from(&b""[..], limit(0)).unwrap(), b"");
    }

    #[test]
    fn input_over_the_limit_is_an_error_naming_the_limit() {
        let err = read_capped_from(&b"123456"[..], limit(5)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(err.to_string(), "larger than 5 bytes (the limit for tests)");
        let err = read_capped_from(io::repeat(0), SETTINGS_LIMIT).unwrap_err();
        assert_eq!(
            err.to_string(),
            "larger than 16 MiB (the limit for baseline, allowlist and probe-names files)"
        );
    }

    #[test]
    fn an_endless_file_is_refused_promptly() {
        let err = read_capped(Path::new("/dev/zero"), limit(1024), true).unwrap_err();
        assert!(err.get_ref().is_some_and(|e| e.is::<TooLarge>()), "{err}");
    }

    #[test]
    fn a_fifo_with_no_writer_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fifo");
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = read_capped(&path, limit(100), false).unwrap_err();
        assert!(err.get_ref().is_some_and(|e| e.is::<EmptyFifo>()), "{err}");
    }

    #[test]
    fn text_must_be_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"ok\xff").unwrap();
        let err = read_capped_text(&path, limit(100), false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        std::fs::write(&path, "ok").unwrap();
        assert_eq!(read_capped_text(&path, limit(100), false).unwrap(), "ok");
    }
}
