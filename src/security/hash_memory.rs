//! argon2id's working memory (19 MiB at the default cost), kept between hashes.
//!
//! Allocating it per hash is what made idgate's memory grow: glibc raises its mmap threshold to
//! the size of the last big block it freed, so from the second hash on the memory came from the
//! allocator's arenas and stayed there, a copy per arena (133 MiB after 200 logins). Mapping it
//! fresh for every hash instead costs a third of the hash rate in page faults.
//!
//! So a hash borrows a buffer from here and gives it back ([`HashMemory::with_blocks`]). While other hashes
//! are running every buffer is kept, so a login flood never pays for memory twice; once none is
//! running, one spare is kept (a lone login finds it ready) and the rest are returned to the
//! kernel. Each buffer reserves more than glibc's largest mmap threshold (32 MiB on 64-bit), so
//! it is always a mapping of its own that a drop unmaps; pages past the blocks a hash uses are
//! never touched and take no memory.

use std::sync::{
    Mutex, PoisonError,
    atomic::{AtomicUsize, Ordering},
};

use argon2::Block;

/// Blocks reserved per buffer at least: just over glibc's `DEFAULT_MMAP_THRESHOLD_MAX`.
const RESERVED_BLOCKS: usize = 32 * 1024 * 1024 / Block::SIZE + 1;

/// Buffers kept once no hash is running.
const KEPT_WHEN_IDLE: usize = 1;

/// Spare buffers and the number of hashes running; one [`SHARED`] by every hash.
pub struct HashMemory {
    spare: Mutex<Vec<Vec<Block>>>,
    running: AtomicUsize,
}

/// The memory every password hash borrows from.
pub static SHARED: HashMemory = HashMemory::new();

impl HashMemory {
    const fn new() -> Self {
        Self { spare: Mutex::new(Vec::new()), running: AtomicUsize::new(0) }
    }

    /// Runs `hash` over `count` blocks of a borrowed buffer. Every block is written before it
    /// is read (argon2's first pass), so what an earlier hash left there does not matter.
    pub fn with_blocks<R>(&self, count: usize, hash: impl FnOnce(&mut [Block]) -> R) -> R {
        self.running.fetch_add(1, Ordering::SeqCst);
        let spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut blocks = spare.unwrap_or_else(|| Vec::with_capacity(RESERVED_BLOCKS.max(count)));
        if blocks.len() < count {
            blocks.resize(count, Block::default());
        }
        let result = hash(&mut blocks[..count]);
        let mut spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
        let others = self.running.fetch_sub(1, Ordering::SeqCst) - 1;
        spare.push(blocks);
        if others == 0 {
            spare.truncate(KEPT_WHEN_IDLE);
        }
        result
    }

    #[cfg(test)]
    fn spare_buffers(&self) -> usize {
        self.spare.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_buffer_is_kept_while_hashes_run_and_one_once_none_does() {
        let memory = HashMemory::new();
        memory.with_blocks(8, |_| {
            memory.with_blocks(8, |_| {});
            // The inner hash ended while the outer one runs: its buffer stays.
            assert_eq!(memory.spare_buffers(), 1);
            memory.with_blocks(8, |_| {
                memory.with_blocks(8, |_| {});
            });
            assert_eq!(memory.spare_buffers(), 2);
        });
        // None runs now: one spare is kept, the others are gone.
        assert_eq!(memory.spare_buffers(), KEPT_WHEN_IDLE);
    }

    #[test]
    fn a_buffer_reserves_past_the_allocators_mmap_ceiling_but_holds_what_was_asked() {
        let memory = HashMemory::new();
        memory.with_blocks(16, |blocks| assert_eq!(blocks.len(), 16));
        let kept = memory.spare.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(kept[0].capacity() * Block::SIZE > 32 * 1024 * 1024);
        assert_eq!(kept[0].len(), 16);
    }
}
