//! Audit retention (`[audit] retention_days`): the periodic maintenance
//! deletes the audit rows older than that.

use super::SqliteStore;
use crate::store::StoreError;
use rusqlite::{Connection, params};

/// Rows deleted per statement: a first purge of a large table must not hold
/// the database (and so the logins waiting on it) for long.
const BATCH: i64 = 10_000;

/// Deletes the audit rows written before `before` (unix time); returns how
/// many.
pub(super) fn purge(store: &SqliteStore, before: i64) -> Result<usize, StoreError> {
    let mut total = 0;
    loop {
        // The lock is released between batches.
        let n = prune(&store.conn(), before, BATCH)?;
        total += n;
        if n == 0 {
            return Ok(total);
        }
    }
}

/// Deletes up to `batch` of the oldest rows, in the order they were written,
/// up to the first row at or after `before`: the table has no index on time,
/// and this way the cost is the rows deleted, not the table. A row written
/// under a clock that was set back stays until the rows before it go.
fn prune(conn: &Connection, before: i64, batch: i64) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM audit WHERE id < min(
                 coalesce((SELECT id FROM audit WHERE time >= ?1 ORDER BY id LIMIT 1),
                          (SELECT max(id) + 1 FROM audit)),
                 (SELECT min(id) FROM audit) + ?2)",
        )?
        .execute(params![before, batch])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Decision, Event};
    use crate::store::sqlite::{insert_audit, migrate};

    fn table(times: &[i64]) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate::migrate(&mut conn).unwrap();
        for &time in times {
            let e = Event::admin("alice", "user reset", Decision::Done, 0, time);
            insert_audit(&conn, &e).unwrap();
        }
        conn
    }

    fn times(conn: &Connection) -> Vec<i64> {
        let mut stmt = conn.prepare("SELECT time FROM audit ORDER BY id").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn rows_before_the_cutoff_go_and_the_rest_stay() {
        let conn = table(&[10, 20, 30, 40]);
        assert_eq!(prune(&conn, 30, BATCH).unwrap(), 2);
        assert_eq!(times(&conn), [30, 40]);
        assert_eq!(prune(&conn, 30, BATCH).unwrap(), 0);
        // Everything older: the table empties, and an empty table is fine.
        assert_eq!(prune(&conn, 100, BATCH).unwrap(), 2);
        assert_eq!(times(&conn), Vec::<i64>::new());
        assert_eq!(prune(&conn, 100, BATCH).unwrap(), 0);
    }

    #[test]
    fn a_batch_deletes_at_most_its_size_oldest_first() {
        let conn = table(&[1, 2, 3, 4, 5, 6]);
        assert_eq!(prune(&conn, 6, 2).unwrap(), 2);
        assert_eq!(times(&conn), [3, 4, 5, 6]);
        assert_eq!(prune(&conn, 6, 2).unwrap(), 2);
        assert_eq!(prune(&conn, 6, 2).unwrap(), 1);
        assert_eq!(prune(&conn, 6, 2).unwrap(), 0);
        assert_eq!(times(&conn), [6]);
    }

    #[test]
    fn a_row_after_a_clock_set_back_waits_for_the_rows_before_it() {
        // The clock went back from 50 to 15 between the second and third row.
        let conn = table(&[10, 50, 15, 60]);
        assert_eq!(prune(&conn, 20, BATCH).unwrap(), 1);
        assert_eq!(times(&conn), [50, 15, 60]);
    }
}
