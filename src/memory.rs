//! How the `clocklab` process takes memory from the kernel.
//!
//! Judging a long history is the one memory-hungry thing the lab does: a
//! million-write history becomes about 550 MB of records, values and
//! verdicts, all of it touched once, soon after it is allocated. The kernel
//! hands a process its memory zeroed, page by page at first touch, so at that
//! size zeroing fresh pages is a large part of what reading and judging cost
//! (the `oracle` benchmark's profile).
//!
//! mimalloc asks the kernel for *transparent huge pages* (2 MiB at a time,
//! instead of 4 KiB) for the arenas it reserves. For a long-lived server
//! that saves TLB misses; for the oracle it does not pay: each first touch
//! zeroes a whole 2 MiB page, and when mimalloc gives back part of one
//! (it returns freed memory to the kernel in 64 KiB pieces) the kernel
//! splits it and the next use faults it in again. Measured with
//! `cargo bench --bench oracle` on the project's 2-core machine, seven runs
//! each, interleaved: read plus judge took a median 1.61 s (1.43 to 2.12)
//! with huge pages and 1.10 s (1.03 to 1.18) without. So the binary turns
//! them off for itself at start, before it allocates much. Child processes
//! (replicas, plugins) inherit the setting; they hold a few MB each, where it
//! makes no difference.

/// Turns transparent huge pages off for this process and its children
/// (Linux `PR_SET_THP_DISABLE`); does nothing elsewhere, or if the kernel
/// refuses (the pages then stay as the system configures them).
pub fn use_small_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_THP_DISABLE reads only its integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
