//! The libproc structures of XNU's `bsd/sys/proc_info.h`, laid out by hand.
//!
//! `libc` has the functions, the `PROX_FDTYPE_*` constants and some of the
//! per-process structures (`proc_bsdinfo`, `proc_bsdshortinfo`, …), but
//! only when building for Apple targets, and none of the per-fd ones
//! (`psem_fdinfo`, `pipe_fdinfo`, `socket_fdinfo`). All of them live here,
//! outside any `#[cfg(target_os)]`, so their size and alignment tests run
//! on every OS. Sizes are those of LP64 macOS (x86_64 and arm64 agree).

#![allow(non_camel_case_types)]

/// `MAXCOMLEN` from `sys/param.h`.
pub const MAXCOMLEN: usize = 16;
/// `MAXPATHLEN` from `sys/param.h`.
pub const MAXPATHLEN: usize = 1024;
/// `MAXTHREADNAMESIZE` from `sys/proc_info.h`.
pub const MAXTHREADNAMESIZE: usize = 64;

// proc_pidinfo flavors.
pub const PROC_PIDLISTFDS: i32 = 1;
pub const PROC_PIDTBSDINFO: i32 = 3;
pub const PROC_PIDTASKINFO: i32 = 4;
pub const PROC_PIDTHREADINFO: i32 = 5;
pub const PROC_PIDLISTTHREADS: i32 = 6;
pub const PROC_PIDT_SHORTBSDINFO: i32 = 13;
/// `PROC_PIDTHREADINFO` keyed by the unique thread id instead of
/// `cthread_self` (`sys/proc_info.h`).
pub const PROC_PIDTHREADID64INFO: i32 = 15;
/// `PROC_PIDLISTTHREADS` listing unique thread ids (`proc_info_private.h`,
/// present since at least xnu-6153, macOS 10.15).
pub const PROC_PIDLISTTHREADIDS: i32 = 28;

// proc_pidfdinfo flavors.
pub const PROC_PIDFDSOCKETINFO: i32 = 3;
pub const PROC_PIDFDPSEMINFO: i32 = 4;
pub const PROC_PIDFDPIPEINFO: i32 = 6;

// proc_fdinfo.proc_fdtype values.
pub const PROX_FDTYPE_SOCKET: u32 = 2;
pub const PROX_FDTYPE_PSEM: u32 = 4;
pub const PROX_FDTYPE_PIPE: u32 = 6;

// `p_stat` values (`sys/proc.h`). XNU sets SIDL, SRUN, SSTOP and SZOMB;
// nothing assigns SSLEEP, so a live process is SRUN whether it runs or not.
pub const SIDL: u32 = 1;
pub const SRUN: u32 = 2;
pub const SSLEEP: u32 = 3;
pub const SSTOP: u32 = 4;
pub const SZOMB: u32 = 5;
/// `soi_state` bit: the connection to the peer is gone (`SOI_S_ISDISCONNECTED`).
pub const SOI_S_ISDISCONNECTED: i16 = 0x2000;
/// Socket types (`sys/socket.h`; the same numbers as Linux).
pub const SOCK_STREAM: i32 = 1;
pub const SOCK_DGRAM: i32 = 2;
pub const SOCK_SEQPACKET: i32 = 5;
/// `ECONNRESET` on Darwin (`sys/errno.h`; Linux's is 104): what `unp_drop`
/// leaves in `so_error` of a datagram socket whose peer was closed.
pub const ECONNRESET_XNU: u16 = 54;
/// Pipe buffers start at `PIPE_SIZE` and grow on demand up to
/// `BIG_PIPE_SIZE` (`sys/pipe.h`; `choose_pipespace` in `sys_pipe.c`).
pub const PIPE_SIZE: u64 = 16 * 1024;
pub const BIG_PIPE_SIZE: u64 = 64 * 1024;
/// `PSEMNAMLEN` (`posix_sem.c`): semaphore names are at most 31 bytes
/// including the NUL terminator, and are stored and compared byte for byte.
pub const PSEMNAMLEN: usize = 31;
/// `socket_info.soi_kind` of a Unix-domain socket.
pub const SOCKINFO_UN: i32 = 3;
/// Kernel open flags in `proc_fileinfo.fi_openflags` (`sys/fcntl.h`).
pub const FREAD: u32 = 0x1;
pub const FWRITE: u32 = 0x2;
pub const FNONBLOCK: u32 = 0x4;

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct proc_fdinfo {
    pub proc_fd: i32,
    pub proc_fdtype: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct proc_bsdshortinfo {
    pub pbsi_pid: u32,
    pub pbsi_ppid: u32,
    pub pbsi_pgid: u32,
    pub pbsi_status: u32,
    pub pbsi_comm: [u8; MAXCOMLEN],
    pub pbsi_flags: u32,
    pub pbsi_uid: u32,
    pub pbsi_gid: u32,
    pub pbsi_ruid: u32,
    pub pbsi_rgid: u32,
    pub pbsi_svuid: u32,
    pub pbsi_svgid: u32,
    pub pbsi_rfu: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct proc_bsdinfo {
    pub pbi_flags: u32,
    pub pbi_status: u32,
    pub pbi_xstatus: u32,
    pub pbi_pid: u32,
    pub pbi_ppid: u32,
    pub pbi_uid: u32,
    pub pbi_gid: u32,
    pub pbi_ruid: u32,
    pub pbi_rgid: u32,
    pub pbi_svuid: u32,
    pub pbi_svgid: u32,
    pub rfu_1: u32,
    pub pbi_comm: [u8; MAXCOMLEN],
    pub pbi_name: [u8; 2 * MAXCOMLEN],
    pub pbi_nfiles: u32,
    pub pbi_pgid: u32,
    pub pbi_pjobc: u32,
    pub e_tdev: u32,
    pub e_tpgid: u32,
    pub pbi_nice: i32,
    pub pbi_start_tvsec: u64,
    pub pbi_start_tvusec: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct proc_taskinfo {
    pub pti_virtual_size: u64,
    pub pti_resident_size: u64,
    pub pti_total_user: u64,
    pub pti_total_system: u64,
    pub pti_threads_user: u64,
    pub pti_threads_system: u64,
    pub pti_policy: i32,
    pub pti_faults: i32,
    pub pti_pageins: i32,
    pub pti_cow_faults: i32,
    pub pti_messages_sent: i32,
    pub pti_messages_received: i32,
    pub pti_syscalls_mach: i32,
    pub pti_syscalls_unix: i32,
    pub pti_csw: i32,
    pub pti_threadnum: i32,
    pub pti_numrunning: i32,
    pub pti_priority: i32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct proc_threadinfo {
    pub pth_user_time: u64,
    pub pth_system_time: u64,
    pub pth_cpu_usage: i32,
    pub pth_policy: i32,
    pub pth_run_state: i32,
    pub pth_flags: i32,
    pub pth_sleep_time: i32,
    pub pth_curpri: i32,
    pub pth_priority: i32,
    pub pth_maxpriority: i32,
    pub pth_name: [u8; MAXTHREADNAMESIZE],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct proc_fileinfo {
    pub fi_openflags: u32,
    pub fi_status: u32,
    pub fi_offset: i64,
    pub fi_type: i32,
    pub fi_guardflags: u32,
}

/// A copy of `stat64` with fixed-size fields.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct vinfo_stat {
    pub vst_dev: u32,
    pub vst_mode: u16,
    pub vst_nlink: u16,
    pub vst_ino: u64,
    pub vst_uid: u32,
    pub vst_gid: u32,
    pub vst_atime: i64,
    pub vst_atimensec: i64,
    pub vst_mtime: i64,
    pub vst_mtimensec: i64,
    pub vst_ctime: i64,
    pub vst_ctimensec: i64,
    pub vst_birthtime: i64,
    pub vst_birthtimensec: i64,
    /// Pipes: bytes queued in this end's buffer (for the write end, in the
    /// read end's). Semaphores: the open count.
    pub vst_size: i64,
    pub vst_blocks: i64,
    /// Pipes: `MAX(PIPE_SIZE, current buffer size)`, never the 64 KiB the
    /// buffer may still grow to (`fill_pipeinfo` in `sys_pipe.c`).
    pub vst_blksize: i32,
    pub vst_flags: u32,
    pub vst_gen: u32,
    pub vst_rdev: u32,
    pub vst_qspare: [i64; 2],
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct psem_info {
    pub psem_stat: vinfo_stat,
    pub psem_name: [u8; MAXPATHLEN],
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct psem_fdinfo {
    pub pfi: proc_fileinfo,
    pub pseminfo: psem_info,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct pipe_info {
    pub pipe_stat: vinfo_stat,
    /// Kernel handle of this end; the other end's `pipe_peerhandle`.
    pub pipe_handle: u64,
    pub pipe_peerhandle: u64,
    pub pipe_status: i32,
    pub rfu_1: i32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct pipe_fdinfo {
    pub pfi: proc_fileinfo,
    pub pipeinfo: pipe_info,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct sockbuf_info {
    /// Bytes in the buffer.
    pub sbi_cc: u32,
    /// High-water mark (SO_RCVBUF / SO_SNDBUF). For the send buffer of a
    /// connected Unix socket it shrinks by what the peer has queued.
    pub sbi_hiwat: u32,
    /// mbuf bytes in use and their budget (`sb_efficiency` × hiwat). The
    /// budget of a Unix socket's send buffer shrinks likewise, unclamped:
    /// it can wrap below zero (`uipc_send` in `uipc_usrreq.c`).
    pub sbi_mbcnt: u32,
    pub sbi_mbmax: u32,
    pub sbi_lowat: u32,
    pub sbi_flags: i16,
    pub sbi_timeo: i16,
}

/// The leading fields of `struct un_sockinfo` (the bound and connected
/// addresses that follow are not needed).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct un_sockinfo_head {
    /// The connected peer's socket handle: the same
    /// `VM_KERNEL_ADDRHASH` of the same pointer the peer reports as its
    /// `soi_so` (`fill_socketinfo` in `socket_info.c`); 0 without a peer.
    pub unsi_conn_so: u64,
    /// The connected peer's pcb handle (the peer's `soi_pcb`); 0 once the
    /// connection is gone (`unp_disconnect` clears `unp_conn`).
    pub unsi_conn_pcb: u64,
}

/// `soi_proto`: a union whose largest member is `un_sockinfo`
/// (16 + 2 × SOCK_MAXADDRLEN(255) bytes, padded to 528). Kept as opaque
/// 8-byte words; [`socket_info::un_head`] reads the Unix-socket part.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct socket_proto {
    pub words: [u64; 66],
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct socket_info {
    pub soi_stat: vinfo_stat,
    pub soi_so: u64,
    pub soi_pcb: u64,
    pub soi_type: i32,
    pub soi_protocol: i32,
    pub soi_family: i32,
    pub soi_options: i16,
    pub soi_linger: i16,
    pub soi_state: i16,
    pub soi_qlen: i16,
    pub soi_incqlen: i16,
    pub soi_qlimit: i16,
    pub soi_timeo: i16,
    pub soi_error: u16,
    pub soi_oobmark: u32,
    pub soi_rcv: sockbuf_info,
    pub soi_snd: sockbuf_info,
    pub soi_kind: i32,
    pub rfu_1: u32,
    pub soi_proto: socket_proto,
}

impl socket_info {
    /// The connected-peer handles, for a Unix-domain socket.
    pub fn un_head(&self) -> Option<un_sockinfo_head> {
        (self.soi_kind == SOCKINFO_UN).then(|| un_sockinfo_head {
            unsi_conn_so: self.soi_proto.words[0],
            unsi_conn_pcb: self.soi_proto.words[1],
        })
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct socket_fdinfo {
    pub pfi: proc_fileinfo,
    pub psi: socket_info,
}

/// Plain-old-data structures that are valid for any bit pattern, so a
/// zeroed value is a sound output buffer for the kernel to fill.
///
/// # Safety
/// Implement only for `#[repr(C)]` structs made of integers and arrays of
/// integers.
pub unsafe trait Pod: Sized + Copy {
    fn zeroed() -> Self {
        // SAFETY: the trait's contract: every bit pattern, zero included,
        // is a valid value of Self.
        unsafe { std::mem::zeroed() }
    }
}

// SAFETY: each is #[repr(C)] and holds only integers and integer arrays.
unsafe impl Pod for proc_fdinfo {}
// SAFETY: as above.
unsafe impl Pod for proc_bsdshortinfo {}
// SAFETY: as above.
unsafe impl Pod for proc_bsdinfo {}
// SAFETY: as above.
unsafe impl Pod for proc_taskinfo {}
// SAFETY: as above.
unsafe impl Pod for proc_threadinfo {}
// SAFETY: as above.
unsafe impl Pod for psem_fdinfo {}
// SAFETY: as above.
unsafe impl Pod for pipe_fdinfo {}
// SAFETY: as above.
unsafe impl Pod for socket_fdinfo {}
// SAFETY: an integer: every bit pattern is valid (thread handles).
unsafe impl Pod for u64 {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    // Expected sizes are computed from XNU's bsd/sys/proc_info.h for LP64
    // (socket_fdinfo = 792 is also what lsof and psutil allocate).
    #[test]
    fn sizes_match_xnu() {
        assert_eq!(size_of::<proc_fdinfo>(), 8);
        assert_eq!(size_of::<proc_bsdshortinfo>(), 64);
        assert_eq!(size_of::<proc_bsdinfo>(), 136);
        assert_eq!(size_of::<proc_taskinfo>(), 96);
        assert_eq!(size_of::<proc_threadinfo>(), 112);
        assert_eq!(size_of::<proc_fileinfo>(), 24);
        assert_eq!(size_of::<vinfo_stat>(), 136);
        assert_eq!(size_of::<psem_info>(), 1160);
        assert_eq!(size_of::<psem_fdinfo>(), 1184);
        assert_eq!(size_of::<pipe_info>(), 160);
        assert_eq!(size_of::<pipe_fdinfo>(), 184);
        assert_eq!(size_of::<sockbuf_info>(), 24);
        assert_eq!(size_of::<socket_proto>(), 528);
        assert_eq!(size_of::<socket_info>(), 768);
        assert_eq!(size_of::<socket_fdinfo>(), 792);
    }

    #[test]
    fn alignments_match_xnu() {
        assert_eq!(align_of::<proc_fdinfo>(), 4);
        assert_eq!(align_of::<proc_bsdshortinfo>(), 4);
        assert_eq!(align_of::<proc_bsdinfo>(), 8);
        assert_eq!(align_of::<proc_taskinfo>(), 8);
        assert_eq!(align_of::<proc_threadinfo>(), 8);
        assert_eq!(align_of::<proc_fileinfo>(), 8);
        assert_eq!(align_of::<vinfo_stat>(), 8);
        assert_eq!(align_of::<psem_info>(), 8);
        assert_eq!(align_of::<psem_fdinfo>(), 8);
        assert_eq!(align_of::<pipe_info>(), 8);
        assert_eq!(align_of::<pipe_fdinfo>(), 8);
        assert_eq!(align_of::<sockbuf_info>(), 4);
        assert_eq!(align_of::<socket_proto>(), 8);
        assert_eq!(align_of::<socket_info>(), 8);
        assert_eq!(align_of::<socket_fdinfo>(), 8);
    }

    #[test]
    fn field_offsets_match_xnu() {
        assert_eq!(offset_of!(vinfo_stat, vst_ino), 8);
        assert_eq!(offset_of!(vinfo_stat, vst_size), 88);
        assert_eq!(offset_of!(vinfo_stat, vst_blksize), 104);
        assert_eq!(offset_of!(psem_info, psem_name), 136);
        assert_eq!(offset_of!(pipe_info, pipe_handle), 136);
        assert_eq!(offset_of!(proc_bsdinfo, pbi_start_tvsec), 120);
        assert_eq!(offset_of!(proc_bsdshortinfo, pbsi_uid), 36);
        assert_eq!(offset_of!(socket_info, soi_rcv), 184);
        assert_eq!(offset_of!(socket_info, soi_snd), 208);
        assert_eq!(offset_of!(socket_info, soi_kind), 232);
        assert_eq!(offset_of!(socket_info, soi_proto), 240);
        assert_eq!(offset_of!(proc_threadinfo, pth_name), 48);
    }

    #[test]
    fn unix_socket_head_reads_the_first_two_words() {
        let mut s = socket_fdinfo::zeroed();
        s.psi.soi_proto.words[1] = 0xabc;
        assert!(s.psi.un_head().is_none());
        s.psi.soi_kind = SOCKINFO_UN;
        assert_eq!(s.psi.un_head().unwrap().unsi_conn_pcb, 0xabc);
    }
}
