//! `PROCMAP_QUERY` (Linux ≥ 6.11): asks an open `/proc/PID/maps` for one
//! VMA at a time, skipping straight to the next shared file mapping, so
//! holders are found without the kernel formatting the whole maps text.
//!
//! The struct and constants build on every OS (the size test runs
//! everywhere); the ioctl itself is Linux-only.

/// `struct procmap_query` of `include/uapi/linux/fs.h` (104 bytes).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProcmapQuery {
    /// `sizeof(struct procmap_query)`, so the kernel knows the ABI version.
    pub size: u64,
    pub query_flags: u64,
    pub query_addr: u64,
    pub vma_start: u64,
    pub vma_end: u64,
    pub vma_flags: u64,
    pub vma_page_size: u64,
    pub vma_offset: u64,
    pub inode: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// In: the name buffer's size (0: no name wanted). Out: bytes written,
    /// including the terminating NUL.
    pub vma_name_size: u32,
    pub build_id_size: u32,
    pub vma_name_addr: u64,
    pub build_id_addr: u64,
}

/// `enum procmap_query_flags` values semleak uses.
pub const PROCMAP_QUERY_VMA_SHARED: u64 = 0x08;
pub const PROCMAP_QUERY_COVERING_OR_NEXT_VMA: u64 = 0x10;
pub const PROCMAP_QUERY_FILE_BACKED_VMA: u64 = 0x20;

/// Shared, file-backed VMAs at or after the query address.
pub const SHARED_FILE_VMAS: u64 =
    PROCMAP_QUERY_COVERING_OR_NEXT_VMA | PROCMAP_QUERY_FILE_BACKED_VMA | PROCMAP_QUERY_VMA_SHARED;

/// `_IOWR('f', 17, struct procmap_query)`.
pub const PROCMAP_QUERY: u32 =
    (3 << 30) | ((std::mem::size_of::<ProcmapQuery>() as u32) << 16) | ((b'f' as u32) << 8) | 17;

/// One shared file mapping as the ioctl reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedVma {
    pub start: u64,
    /// Device in `st_dev` encoding.
    pub dev: u64,
    pub inode: u64,
}

#[cfg(target_os = "linux")]
pub use ioctl::{query_name, shared_file_vmas, Unsupported};

#[cfg(target_os = "linux")]
mod ioctl {
    use std::io;
    use std::os::fd::AsFd;

    use rustix::ioctl::opcode::read_write;

    use super::{ProcmapQuery, SharedVma, SHARED_FILE_VMAS};

    /// The kernel has no `PROCMAP_QUERY` (ENOTTY before 6.11; EINVAL if it
    /// rejects our flags or size): read the maps text instead.
    #[derive(Debug)]
    pub struct Unsupported;

    fn query(maps: impl AsFd, q: &mut ProcmapQuery) -> rustix::io::Result<()> {
        // SAFETY: PROCMAP_QUERY reads and writes exactly one `struct
        // procmap_query`, whose layout ProcmapQuery reproduces (size test
        // below); the name and build-id buffers it may write to are either
        // absent (size 0, address 0) or set by `query_name` to a live
        // buffer of the stated size.
        unsafe {
            rustix::ioctl::ioctl(
                maps,
                rustix::ioctl::Updater::<{ read_write::<ProcmapQuery>(b'f', 17) }, _>::new(q),
            )
        }
    }

    /// Call `each` for every shared file mapping of the process whose maps
    /// file `maps` is, in address order. `Err(Ok(Unsupported))` when the
    /// kernel lacks the ioctl, `Err(Err(e))` for other errors (ESRCH: gone).
    pub fn shared_file_vmas(
        maps: impl AsFd,
        mut each: impl FnMut(SharedVma),
    ) -> Result<(), Result<Unsupported, io::Error>> {
        let maps = maps.as_fd();
        let mut addr = 0u64;
        loop {
            let mut q = ProcmapQuery {
                size: std::mem::size_of::<ProcmapQuery>() as u64,
                query_flags: SHARED_FILE_VMAS,
                query_addr: addr,
                ..ProcmapQuery::default()
            };
            match query(maps, &mut q) {
                Ok(()) => {}
                // No VMA at or after `addr`: done.
                Err(rustix::io::Errno::NOENT) => return Ok(()),
                Err(rustix::io::Errno::NOTTY) | Err(rustix::io::Errno::INVAL) => {
                    return Err(Ok(Unsupported))
                }
                Err(e) => return Err(Err(e.into())),
            }
            each(SharedVma {
                start: q.vma_start,
                dev: crate::linux::parse::makedev(q.dev_major.into(), q.dev_minor.into()),
                inode: q.inode,
            });
            if q.vma_end <= addr {
                return Ok(()); // never loop on a kernel that does not advance
            }
            addr = q.vma_end;
        }
    }

    /// The name of the VMA covering `start` (its file's path, ` (deleted)`
    /// appended when unlinked), written into `buf`; `None` when it has none.
    pub fn query_name(maps: impl AsFd, start: u64, buf: &mut [u8]) -> io::Result<Option<&[u8]>> {
        let mut q = ProcmapQuery {
            size: std::mem::size_of::<ProcmapQuery>() as u64,
            query_flags: SHARED_FILE_VMAS,
            query_addr: start,
            vma_name_size: buf.len().min(u32::MAX as usize) as u32,
            vma_name_addr: buf.as_mut_ptr() as u64,
            ..ProcmapQuery::default()
        };
        query(maps, &mut q)?;
        if q.vma_start != start || q.vma_name_size == 0 {
            return Ok(None);
        }
        let len = (q.vma_name_size as usize).min(buf.len());
        let name = &buf[..len];
        Ok(Some(name.strip_suffix(b"\0").unwrap_or(name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_kernel_header() {
        assert_eq!(std::mem::size_of::<ProcmapQuery>(), 104);
        assert_eq!(std::mem::align_of::<ProcmapQuery>(), 8);
        assert_eq!(std::mem::offset_of!(ProcmapQuery, inode), 64);
        assert_eq!(std::mem::offset_of!(ProcmapQuery, dev_major), 72);
        assert_eq!(std::mem::offset_of!(ProcmapQuery, vma_name_size), 80);
        assert_eq!(std::mem::offset_of!(ProcmapQuery, vma_name_addr), 88);
        assert_eq!(std::mem::offset_of!(ProcmapQuery, build_id_addr), 96);
        assert_eq!(PROCMAP_QUERY, 0xC068_6611);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn opcode_matches_rustix_encoding() {
        let op = rustix::ioctl::opcode::read_write::<ProcmapQuery>(b'f', 17);
        assert_eq!(op as u64, u64::from(PROCMAP_QUERY));
    }
}
