//! argon2id's working memory (19 MiB at the default cost), kept between hashes.
//!
//! Allocating it per hash is what made idgate's memory grow: glibc raises its mmap threshold to
//! the size of the last big block it freed, so from the second hash on the memory came from the
//! allocator's arenas and stayed there, a copy per arena (133 MiB after 200 logins). Mapping it
//! fresh for every hash instead costs a third of the hash rate in page faults.
//!
//! So a hash borrows a buffer from here and gives it back ([`Ticket::with_blocks`]). A hash is
//! counted from the moment it is queued ([`HashMemory::ticket`]) until it is done. While any is
//! counted every buffer is kept, so a login flood never pays for memory twice; once none is, one
//! spare is kept (a lone login finds it ready) and the rest are returned to the kernel. Buffers
//! are made only by running hashes, so there are never more than hashing threads.
//!
//! Counting only the hashes running was not enough: in a flood a thread between two jobs
//! sometimes found no other hash running, gave a buffer back, and the next hash faulted 19 MiB in
//! again (about 50 page faults per hash on average, and an unmap that interrupts the other core).
//!
//! Each buffer reserves more than glibc's largest mmap threshold (32 MiB on 64-bit), so it is
//! always a mapping of its own that a drop unmaps; pages past the blocks a hash uses are never
//! touched and take no memory.

use std::sync::{
    Mutex, MutexGuard, PoisonError,
    atomic::{AtomicUsize, Ordering},
};

use argon2::Block;

/// Blocks reserved per buffer at least: just over glibc's `DEFAULT_MMAP_THRESHOLD_MAX`.
const RESERVED_BLOCKS: usize = 32 * 1024 * 1024 / Block::SIZE + 1;

/// Buffers kept once no hash is queued or running.
const KEPT_WHEN_IDLE: usize = 1;

/// Spare buffers and the number of hashes queued or running; one [`SHARED`] by every hash.
pub struct HashMemory {
    spare: Mutex<Vec<Vec<Block>>>,
    pending: AtomicUsize,
}

/// The memory every password hash borrows from.
pub static SHARED: HashMemory = HashMemory::new();

impl HashMemory {
    const fn new() -> Self {
        Self { spare: Mutex::new(Vec::new()), pending: AtomicUsize::new(0) }
    }

    /// Counts one hash from now (take it before the job is queued) until the ticket is dropped.
    pub fn ticket(&self) -> Ticket<'_> {
        self.pending.fetch_add(1, Ordering::SeqCst);
        Ticket { memory: self }
    }

    fn spare(&self) -> MutexGuard<'_, Vec<Vec<Block>>> {
        self.spare.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn spare_buffers(&self) -> usize {
        self.spare().len()
    }
}

/// One hash, queued or running: while any ticket is out, [`HashMemory`] keeps every buffer.
pub struct Ticket<'a> {
    memory: &'a HashMemory,
}

impl Ticket<'_> {
    /// Runs `hash` over `count` blocks of a borrowed buffer. Every block is written before it
    /// is read (argon2's first pass), so what an earlier hash left there does not matter.
    pub fn with_blocks<R>(&self, count: usize, hash: impl FnOnce(&mut [Block]) -> R) -> R {
        let spare = self.memory.spare().pop();
        let mut blocks = spare.unwrap_or_else(|| Vec::with_capacity(RESERVED_BLOCKS.max(count)));
        if blocks.len() < count {
            blocks.resize(count, Block::default());
        }
        let result = hash(&mut blocks[..count]);
        self.memory.spare().push(blocks);
        result
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        // Under the lock, so a ticket taken meanwhile finds the spares still there.
        let mut spare = self.memory.spare();
        if self.memory.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            spare.truncate(KEPT_WHEN_IDLE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_buffer_is_kept_while_a_hash_is_queued_and_one_once_none_is() {
        let memory = HashMemory::new();
        let queued = memory.ticket();
        let (first, second) = (memory.ticket(), memory.ticket());
        first.with_blocks(8, |_| second.with_blocks(8, |_| {}));
        drop((first, second));
        // No hash runs, but one waits in the queue: both buffers stay for the flood.
        assert_eq!(memory.spare_buffers(), 2);
        queued.with_blocks(8, |_| {});
        assert_eq!(memory.spare_buffers(), 2);
        // None is queued or running now: one spare is kept, the others are gone.
        drop(queued);
        assert_eq!(memory.spare_buffers(), KEPT_WHEN_IDLE);
    }

    #[test]
    fn a_buffer_reserves_past_the_allocators_mmap_ceiling_but_holds_what_was_asked() {
        let memory = HashMemory::new();
        memory.ticket().with_blocks(16, |blocks| assert_eq!(blocks.len(), 16));
        let kept = memory.spare();
        assert!(kept[0].capacity() * Block::SIZE > 32 * 1024 * 1024);
        assert_eq!(kept[0].len(), 16);
    }
}
