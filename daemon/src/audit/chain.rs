//! Tamper evidence: every stored audit row carries the hash of the row
//! before it and its own hash over all its fields (see [`super::record`]).
//!
//! Threat: someone with write access to the database edits, deletes or
//! reorders rows to hide what happened. Each of these breaks a hash or a
//! link, and [`Verifier`] names the row. What a chain alone cannot show is a
//! cut at either end: rows deleted from the start look like retention
//! (verification starts at the oldest row present and trusts its link as
//! the anchor), rows deleted from the end look like fewer events. The
//! stream's copy at a collector (each record carries both hashes) and the
//! `audit` event each start-up writes cover those.

use super::record::Body;
use mfad_protocol::AuditProblem;

/// One stored audit row: what the verifier checks and what `mfactl audit`
/// and `history` show.
#[derive(Debug, Clone)]
pub struct StoredRow {
    pub id: i64,
    /// Unix time (the body carries it as RFC 3339).
    pub time: i64,
    pub body: Body,
    /// `None` for a row written before the chain existed.
    pub hash: Option<String>,
}

/// At most this many problems are listed; the count goes on.
const MAX_LISTED: usize = 100;

#[derive(Debug, Default)]
pub struct Verifier {
    /// The id and hash of the last chained row seen.
    last: Option<(i64, String)>,
    pub rows: u64,
    /// Rows older than the chain (written before mfad chained its rows).
    pub unchained: u64,
    /// The link of the oldest chained row, trusted as the anchor.
    pub anchor: Option<(i64, String)>,
    pub problems: Vec<AuditProblem>,
    pub problem_count: u64,
}

impl Verifier {
    /// Checks the next row, in id order.
    pub fn check(&mut self, row: StoredRow) {
        self.rows += 1;
        let (Some(hash), Some(prev)) = (row.hash.as_deref(), row.body.prev_hash.as_deref()) else {
            if self.last.is_some() {
                self.problem(row.id, "has no hash: it was written outside mfad");
            } else {
                self.unchained += 1;
            }
            return;
        };
        // One finding per row: a row that fails its own hash may have had its
        // link edited too, so its link says nothing more.
        if row.body.hash() != hash {
            self.problem(
                row.id,
                "does not match its hash: it was edited, or moved from another position",
            );
        } else {
            self.check_link(row.id, prev);
        }
        self.last = Some((row.id, hash.to_owned()));
    }

    fn check_link(&mut self, id: i64, prev: &str) {
        match &self.last {
            None => self.anchor = Some((id, prev.to_owned())),
            Some((last_id, last_hash)) if last_hash != prev => {
                let what = format!(
                    "does not follow row {last_id}: rows between them were deleted, or rows were reordered"
                );
                self.problem(id, &what);
            }
            Some(_) => {}
        }
    }

    /// The id and hash of the newest chained row.
    pub fn head(&self) -> Option<&(i64, String)> {
        self.last.as_ref()
    }

    fn problem(&mut self, id: i64, what: &str) {
        self.problem_count += 1;
        if self.problems.len() < MAX_LISTED {
            self.problems.push(AuditProblem {
                id,
                problem: format!("row {id} {what}"),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::GENESIS;
    use crate::audit::{Decision, Event};

    /// A chain of `n` rows, as the store writes it.
    fn chain(n: i64) -> Vec<StoredRow> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|id| {
                let event = Event::admin("alice", &format!("event {id}"), Decision::Done, 0, id);
                let body = Body::of(&event, Some(id), Some(prev.clone()));
                let hash = body.hash();
                prev = hash.clone();
                StoredRow {
                    id,
                    time: id,
                    body,
                    hash: Some(hash),
                }
            })
            .collect()
    }

    fn verify(rows: Vec<StoredRow>) -> Verifier {
        let mut v = Verifier::default();
        rows.into_iter().for_each(|r| v.check(r));
        v
    }

    fn named(v: &Verifier) -> Vec<i64> {
        v.problems.iter().map(|p| p.id).collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        let v = verify(chain(5));
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!(v.rows, 5);
        assert_eq!(v.anchor, Some((1, GENESIS.to_owned())));
        assert_eq!(v.head().map(|h| h.0), Some(5));
    }

    #[test]
    fn an_edited_row_is_named() {
        let mut rows = chain(5);
        rows[2].body.reason = "nothing happened".into();
        assert_eq!(named(&verify(rows)), vec![3]);
    }

    #[test]
    fn a_deleted_row_is_named_by_its_successor() {
        let mut rows = chain(5);
        rows.remove(2);
        let v = verify(rows);
        assert_eq!(named(&v), vec![4]);
        assert!(v.problems[0].problem.contains("does not follow row 2"));
    }

    #[test]
    fn reordered_rows_are_named() {
        // Two rows swap places, each keeping its id: their contents no
        // longer match their hashes.
        let mut rows = chain(5);
        let (a, b) = (rows[1].body.clone(), rows[2].body.clone());
        rows[1].body = b;
        rows[2].body = a;
        assert_eq!(named(&verify(rows)), vec![2, 3]);
        // Or whole rows swapped, ids included: the links break.
        let mut rows = chain(5);
        rows.swap(1, 2);
        assert!(!verify(rows).problems.is_empty());
    }

    #[test]
    fn pruned_rows_leave_a_verifiable_chain_from_the_oldest_kept() {
        let rows: Vec<_> = chain(6).into_iter().skip(3).collect();
        let v = verify(rows);
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!(v.anchor.map(|a| a.0), Some(4));
    }

    #[test]
    fn rows_older_than_the_chain_are_counted_not_blamed() {
        let mut legacy = chain(1).remove(0);
        legacy.id = 0;
        legacy.hash = None;
        legacy.body.prev_hash = None;
        let mut rows = vec![legacy];
        rows.extend(chain(3));
        let v = verify(rows);
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!(v.unchained, 1);
        // But an unhashed row inside the chain is.
        let mut rows = chain(3);
        rows[1].hash = None;
        assert_eq!(named(&verify(rows)), vec![2, 3]);
    }
}
