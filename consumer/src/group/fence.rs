//! The fence a unit carries into its apply transaction.
//!
//! A member applies a unit of a table (or a schema's database-level DDL) only under the lease
//! it held when its round began. The backend checks, **inside the unit's transaction** and
//! just before the progress write, that the lease row still names this member with this epoch
//! (a conditional `UPDATE` that locks the row). A takeover bumps the epoch in its own
//! transaction on the same row, so the two serialize: either the unit commits first (and the
//! new owner, which reads the progress record after its claim committed, sees it), or the
//! takeover commits first and the unit's check matches no row, fails with
//! [`crate::Error::Fenced`] and the whole transaction (rows and progress) rolls back.

use super::LeaseKey;

/// A lease as held at the start of a round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    /// The group.
    pub group: String,
    /// The covered table or schema.
    pub key: LeaseKey,
    /// This member's id.
    pub owner: String,
    /// The lease's epoch when the round began.
    pub epoch: i64,
}

impl Fence {
    /// The error of a unit whose fence check matched no lease row.
    pub fn lost(&self, file: &str) -> crate::Error {
        crate::Error::Fenced {
            group: self.group.clone(),
            key: self.key.to_string(),
            owner: self.owner.clone(),
            epoch: self.epoch,
            file: file.to_string(),
        }
    }
}
