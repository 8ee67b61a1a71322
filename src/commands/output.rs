//! Every file semleak writes on request goes through here: `-o FILE`
//! (scan, analyze, snapshot) by a temporary file renamed over FILE, and the
//! files `semleak run` writes in place (`--report`, `--junit`,
//! `$GITHUB_STEP_SUMMARY`), opened without following a symbolic link. A
//! path in a shared directory such as `/tmp` may be another user's link or
//! device; semleak, often run as root, must not replace or write through it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::exit::AppError;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The rename of `-o FILE` would replace something that is not a
    /// regular file (a device, a FIFO, a socket, a directory, a link).
    #[error(
        "refusing to replace {}: it is {kind}, not a regular file \
         (write to a regular file, or omit -o to print to stdout)",
        path.display()
    )]
    NotRegular { path: PathBuf, kind: &'static str },
    /// A file written in place is a symbolic link.
    #[error(
        "refusing to write {}: it is a symbolic link (name a regular file, not a link)",
        path.display()
    )]
    Symlink { path: PathBuf },
}

impl From<OutputError> for AppError {
    fn from(e: OutputError) -> Self {
        AppError::Module(Box::new(e))
    }
}

/// What `file_type` is, for a message: "a character device", …
fn describe(file_type: fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_dir() {
        "a directory"
    } else if file_type.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// `Ok` when a rename onto `path` replaces at most a regular file: `path`
/// is missing or is one (not followed when it is a symbolic link).
pub fn check_replaceable(path: &Path) -> Result<(), AppError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_file() => Ok(()),
        Ok(meta) => Err(OutputError::NotRegular {
            path: path.to_path_buf(),
            kind: describe(meta.file_type()),
        }
        .into()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(write_error(path, source)),
    }
}

/// Write `path` whole or not at all: a temporary file in the same directory
/// (same filesystem), synced, then renamed over `path`, so a reader such as
/// node_exporter's textfile collector never sees half a file. Only a
/// missing name or a regular file is replaced ([`check_replaceable`]); a
/// link swapped in after the check is replaced itself, never its target.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), AppError> {
    check_replaceable(path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let result = (|| {
        let mut tmp = tempfile::Builder::new()
            .prefix(".semleak-")
            .suffix(".tmp")
            .tempfile_in(dir)?;
        write(tmp.as_file_mut())?;
        tmp.as_file().sync_all()?;
        // Readable like any output file (tempfile creates 0600).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(fs::Permissions::from_mode(0o644))?;
        }
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    })();
    result.map_err(|source| write_error(path, source))
}

/// Open `path` for writing in place without following a symbolic link as
/// its last component (`O_NOFOLLOW`), creating it if missing: `append`
/// for `$GITHUB_STEP_SUMMARY`, otherwise for writing without truncating
/// yet (the caller truncates when it writes).
pub fn open_in_place(path: &Path, append: bool) -> Result<File, AppError> {
    let mut options = OpenOptions::new();
    options.create(true);
    if append {
        options.append(true);
    } else {
        options.write(true).truncate(false);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path).map_err(|source| {
        // ELOOP on Linux and macOS, EMLINK on FreeBSD: ask the filesystem
        // rather than the errno.
        let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        if is_link {
            OutputError::Symlink {
                path: path.to_path_buf(),
            }
            .into()
        } else {
            write_error(path, source)
        }
    })
}

pub fn write_error(path: &Path, source: io::Error) -> AppError {
    AppError::Write {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(e: AppError) -> String {
        e.to_string()
    }

    fn mkfifo(path: &Path) {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    }

    #[test]
    fn replaceable_missing_and_regular() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        check_replaceable(&path).unwrap();
        write_atomically(&path, |w| w.write_all(b"one")).unwrap();
        write_atomically(&path, |w| w.write_all(b"two")).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
    }

    #[test]
    fn refuses_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let e = write_atomically(&fifo, |w| w.write_all(b"x")).unwrap_err();
        assert_eq!(
            message(e),
            format!(
                "refusing to replace {}: it is a FIFO, not a regular file \
                 (write to a regular file, or omit -o to print to stdout)",
                fifo.display()
            )
        );
        {
            use std::os::unix::fs::FileTypeExt;
            assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        }
        // Nothing left behind in the directory but the FIFO.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn refuses_symlink_and_keeps_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"theirs").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = write_atomically(&link, |w| w.write_all(b"x")).unwrap_err();
        assert!(message(e).contains("it is a symbolic link, not a regular file"));
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&target).unwrap(), b"theirs");
    }

    #[test]
    fn refuses_directory() {
        let dir = tempfile::tempdir().unwrap();
        let e = check_replaceable(dir.path()).unwrap_err();
        assert!(message(e).contains("it is a directory, not a regular file"));
    }

    #[test]
    fn refuses_character_device() {
        // Metadata only: nothing is written near /dev/null.
        let e = check_replaceable(Path::new("/dev/null")).unwrap_err();
        assert_eq!(
            message(e),
            "refusing to replace /dev/null: it is a character device, not a regular file \
             (write to a regular file, or omit -o to print to stdout)"
        );
    }

    #[test]
    fn in_place_refuses_symlink_and_keeps_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"theirs").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for append in [false, true] {
            let e = open_in_place(&link, append).unwrap_err();
            assert_eq!(
                message(e),
                format!(
                    "refusing to write {}: it is a symbolic link (name a regular file, not a link)",
                    link.display()
                )
            );
        }
        assert_eq!(fs::read(&target).unwrap(), b"theirs");
        // A dangling link is not created through either.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(open_in_place(&dangling, true).is_err());
        assert!(!dir.path().join("nowhere").exists());
    }

    #[test]
    fn in_place_creates_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.md");
        open_in_place(&path, true).unwrap().write_all(b"a").unwrap();
        open_in_place(&path, true).unwrap().write_all(b"b").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"ab");
        open_in_place(&path, false).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"ab", "not truncated on open");
    }
}
