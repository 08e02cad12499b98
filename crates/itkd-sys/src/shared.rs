//! A small table of 64-bit words in memory shared by the master and every process it
//! forks (`MAP_SHARED`, anonymous), written and read through atomics only: how the master
//! hands its TLS session ticket keys to workers, and rotates them, without a file.

use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use nix::sys::mman::{self, MapFlags, ProtFlags};

use crate::error::{Error, Result};

/// `len` zeroed shared words.
#[derive(Debug)]
pub struct SharedWords {
    map: NonNull<std::ffi::c_void>,
    len: usize,
}

// SAFETY: the mapping is owned by this value (unmapped only in Drop) and only ever
// accessed through atomics: any thread may hold and use it.
unsafe impl Send for SharedWords {}
// SAFETY: as above.
unsafe impl Sync for SharedWords {}

const _: () = assert!(cfg!(target_has_atomic = "64"), "lock-free 64-bit atomics");

impl SharedWords {
    pub fn new(len: usize) -> Result<SharedWords> {
        let bytes = len
            .checked_mul(std::mem::size_of::<AtomicU64>())
            .and_then(NonZeroUsize::new)
            .ok_or(Error::ScoreboardSize(len))?;
        // SAFETY: a new anonymous mapping aliases no memory of this process; the kernel
        // picks a page-aligned address (enough for AtomicU64) and zero-fills it, and zero
        // is a valid AtomicU64.
        let map = unsafe {
            mman::mmap_anonymous(
                None,
                bytes,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .map_err(|e| Error::sys(format!("mmap({bytes} bytes, MAP_SHARED)"), e))?;
        Ok(SharedWords { map, len })
    }

    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: `len` AtomicU64 lie at the start of the mapping (see `new`), initialised
        // and aligned, alive as long as `self`; other processes change them only through
        // atomics, which are lock-free, so a shared slice of them is sound.
        unsafe { std::slice::from_raw_parts(self.map.cast::<AtomicU64>().as_ptr(), self.len) }
    }
}

impl Drop for SharedWords {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, of this length, unmapped only here; every
        // reference into it borrows from `self`.
        let _ = unsafe { mman::munmap(self.map, self.len * std::mem::size_of::<AtomicU64>()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn another_holder_sees_and_changes_the_words() {
        let shared = SharedWords::new(4).unwrap();
        shared.words()[1].store(7, Ordering::SeqCst);
        // A thread stands in for the other process here; the fork case is the master's
        // (tests/tls.rs resumes sessions across workers).
        std::thread::scope(|s| {
            s.spawn(|| {
                shared.words()[2].store(
                    shared.words()[1].load(Ordering::SeqCst) + 1,
                    Ordering::SeqCst,
                )
            });
        });
        assert_eq!(shared.words()[2].load(Ordering::SeqCst), 8);
        assert_eq!(shared.words().len(), 4);
    }
}
