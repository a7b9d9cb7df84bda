//! One write, as it flows through a run: the diff decides it ([`Unmapped`]), the mapping stage turns
//! its record into the target's object ([`Mapped`]), the sink applies it and hands the same write back
//! as its acknowledgement ([`Ack`]), on which the diff commits the contract. One struct carries the
//! object's identity through all three; only what it carries changes, so no stage copies fields from
//! one type into the next.

use serde_json::Value;
use uuid::Uuid;

use crate::sources::RawRecord;

/// A write at one stage; `what` is the stage's payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Write<T> {
    /// The object's row in the contract table.
    pub row: u32,
    pub origin_id: String,
    pub target_id: Uuid,
    /// On the way in, the id another system gave the object (an API target), from its contract; on the
    /// way back, the id the target gave an object it created, when it gives one.
    pub remote_id: Option<String>,
    /// The record's hash, committed to the contract when the write succeeds; zero for deletes.
    pub hash: [u8; 32],
    /// No contract was committed for the object: the target does not hold it yet.
    pub created: bool,
    pub what: T,
}

/// What a write does to the object.
#[derive(Debug, Clone, PartialEq)]
pub enum Action<B> {
    /// Creates or updates the object from `B`: the source's record, then the mapped object.
    Upsert(B),
    /// Removes the object, or marks it deleted when `soft`.
    Delete { soft: bool },
}

/// What became of one write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    Deleted,
    /// The synchronization's filter left the record out.
    Skipped,
    Failed(String),
}

/// From the diff to the mapping stage.
pub type Unmapped = Write<Action<RawRecord>>;
/// From the mapping stage to the sink.
pub type Mapped = Write<Action<Value>>;
/// From the sink (or the mapping stage, for records it failed or skipped) back to the diff.
pub type Ack = Write<Outcome>;

impl<T> Write<T> {
    /// The same write carrying `what` instead.
    pub fn with<U>(self, what: U) -> Write<U> {
        let Write { row, origin_id, target_id, remote_id, hash, created, what: _ } = self;
        Write { row, origin_id, target_id, remote_id, hash, created, what }
    }

    /// The write without its payload, and the payload: a stage takes `what` apart and hands the rest on.
    pub fn split(self) -> (Write<()>, T) {
        let Write { row, origin_id, target_id, remote_id, hash, created, what } = self;
        (Write { row, origin_id, target_id, remote_id, hash, created, what: () }, what)
    }

    /// The acknowledgement that it failed.
    pub fn fail(self, message: String) -> Ack {
        self.with(Outcome::Failed(message))
    }
}

impl Ack {
    /// The acknowledgement carrying the id the target gave the object, when it gave one.
    pub fn given(mut self, remote_id: Option<String>) -> Ack {
        if remote_id.is_some() {
            self.remote_id = remote_id;
        }
        self
    }
}

impl<B> Action<B> {
    pub fn is_delete(&self) -> bool {
        matches!(self, Action::Delete { .. })
    }
}

impl<B> Write<Action<B>> {
    /// A delete of the object in contract `row`.
    pub fn delete(row: u32, origin_id: String, target_id: Uuid, remote_id: Option<String>, soft: bool) -> Self {
        Write { row, origin_id, target_id, remote_id, hash: [0; 32], created: false, what: Action::Delete { soft } }
    }

    /// The upsert's payload, or `None` for a delete.
    pub fn upsert(&self) -> Option<&B> {
        match &self.what {
            Action::Upsert(body) => Some(body),
            Action::Delete { .. } => None,
        }
    }

    /// What applying this write means when the target took it: created, updated or deleted.
    pub fn applied(&self) -> Outcome {
        match self.what {
            Action::Upsert(_) if self.created => Outcome::Created,
            Action::Upsert(_) => Outcome::Updated,
            Action::Delete { .. } => Outcome::Deleted,
        }
    }

    /// The acknowledgement of this write: applied as [`Write::applied`] says, or failed with `refused`.
    pub fn ack(self, refused: Option<String>) -> Ack {
        let outcome = refused.map_or_else(|| self.applied(), Outcome::Failed);
        self.with(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(created: bool) -> Write<Action<u8>> {
        Write { row: 3, origin_id: "a".into(), target_id: Uuid::nil(), remote_id: None, hash: [9; 32], created, what: Action::Upsert(1) }
    }

    #[test]
    fn a_write_acknowledges_what_it_did_and_keeps_its_identity() {
        assert_eq!(upsert(true).applied(), Outcome::Created);
        assert_eq!(upsert(false).applied(), Outcome::Updated);
        let delete = Write::<Action<u8>>::delete(4, "b".into(), Uuid::nil(), Some("r".into()), true);
        assert_eq!((delete.hash, delete.what.is_delete(), delete.applied()), ([0; 32], true, Outcome::Deleted));
        let ack = upsert(true).ack(Some("refused".into()));
        assert_eq!((ack.row, ack.origin_id.as_str(), ack.hash, ack.what), (3, "a", [9; 32], Outcome::Failed("refused".into())));
        assert_eq!(upsert(false).ack(None).what, Outcome::Updated);
        let (rest, action) = upsert(true).split();
        assert_eq!((rest.row, rest.hash, action), (3, [9; 32], Action::Upsert(1)));
        assert_eq!(rest.fail("bad".into()).what, Outcome::Failed("bad".into()));
    }
}
