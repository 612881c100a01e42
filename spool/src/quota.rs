//! Accounting of one spool: memory bytes, disk bytes, entry counts, and the placement decision
//! for a new entry against the memory and disk quotas.
//!
//! Disk bytes count live records (header plus payload) of entries not yet released. The file
//! footprint can exceed that by the released-but-not-yet-deleted records of segments that still
//! hold a live entry (at most one segment size per such segment); the `cdc_spool_segments`
//! gauge shows how many there are.

/// Where a new entry goes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Fits the memory quota.
    Memory,
    /// Memory is full; the record fits the disk quota.
    Spill,
    /// The record is larger than the whole disk quota and the disk holds nothing: it is written
    /// anyway (a request capped at the total), or it could never be admitted.
    Oversized,
    /// Memory is full and the record does not fit what is left of the disk quota.
    WaitForDiskQuota,
}

/// Byte and entry counters plus the quotas they are checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Accounting {
    memory_quota: u64,
    disk_quota: u64,
    pub(crate) memory_bytes: u64,
    pub(crate) disk_bytes: u64,
    pub(crate) memory_entries: u64,
    pub(crate) disk_entries: u64,
}

impl Accounting {
    pub(crate) fn new(memory_quota: u64, disk_quota: u64) -> Accounting {
        Accounting {
            memory_quota,
            disk_quota,
            memory_bytes: 0,
            disk_bytes: 0,
            memory_entries: 0,
            disk_entries: 0,
        }
    }

    /// Memory plus disk bytes: what the watermarks are compared with.
    pub(crate) fn total(&self) -> u64 {
        self.memory_bytes.saturating_add(self.disk_bytes)
    }

    /// Entries not released.
    pub(crate) fn entries(&self) -> u64 {
        self.memory_entries + self.disk_entries
    }

    /// Decides where an entry of `len` payload bytes (`rec_len` on disk) goes. Pure: the caller
    /// commits with [`Accounting::add_memory`] or [`Accounting::add_disk`].
    pub(crate) fn place(&self, len: u64, rec_len: u64) -> Placement {
        if self.memory_bytes.saturating_add(len) <= self.memory_quota {
            Placement::Memory
        } else if rec_len > self.disk_quota {
            if self.disk_bytes == 0 {
                Placement::Oversized
            } else {
                Placement::WaitForDiskQuota
            }
        } else if self.disk_bytes.saturating_add(rec_len) <= self.disk_quota {
            Placement::Spill
        } else {
            Placement::WaitForDiskQuota
        }
    }

    pub(crate) fn add_memory(&mut self, len: u64) {
        self.memory_bytes += len;
        self.memory_entries += 1;
    }

    pub(crate) fn sub_memory(&mut self, len: u64) {
        self.sub_memory_n(len, 1);
    }

    /// Frees `n` memory entries of `bytes` payload bytes in all.
    pub(crate) fn sub_memory_n(&mut self, bytes: u64, n: u64) {
        debug_assert!(self.memory_bytes >= bytes && self.memory_entries >= n);
        self.memory_bytes = self.memory_bytes.saturating_sub(bytes);
        self.memory_entries = self.memory_entries.saturating_sub(n);
    }

    /// Frees `n` disk entries of `bytes` record bytes in all.
    pub(crate) fn sub_disk_n(&mut self, bytes: u64, n: u64) {
        debug_assert!(self.disk_bytes >= bytes && self.disk_entries >= n);
        self.disk_bytes = self.disk_bytes.saturating_sub(bytes);
        self.disk_entries = self.disk_entries.saturating_sub(n);
    }

    pub(crate) fn add_disk(&mut self, rec_len: u64) {
        self.disk_bytes += rec_len;
        self.disk_entries += 1;
    }

    pub(crate) fn sub_disk(&mut self, rec_len: u64) {
        self.sub_disk_n(rec_len, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_first_then_disk_then_wait() {
        let mut a = Accounting::new(10, 30);
        assert_eq!(a.place(10, 18), Placement::Memory);
        a.add_memory(10);
        assert_eq!(a.place(1, 9), Placement::Spill);
        assert_eq!(
            a.place(0, 8),
            Placement::Memory,
            "an empty entry always fits"
        );
        a.add_disk(20);
        assert_eq!(
            a.place(2, 10),
            Placement::Spill,
            "exactly at the disk quota"
        );
        assert_eq!(a.place(3, 11), Placement::WaitForDiskQuota);
        assert_eq!(a.total(), 30);
        assert_eq!(a.entries(), 2);
    }

    #[test]
    fn oversized_is_admitted_only_on_an_empty_disk() {
        let mut a = Accounting::new(10, 30);
        a.add_memory(10);
        assert_eq!(a.place(40, 48), Placement::Oversized);
        a.add_disk(9);
        assert_eq!(a.place(40, 48), Placement::WaitForDiskQuota);
        a.sub_disk(9);
        assert_eq!(a.place(40, 48), Placement::Oversized);
    }
}
