//! Listing what a namespace holds, a page at a time, in an order that concurrent writes
//! cannot shuffle: keyset pagination, each page starting after the last key of the one
//! before, on an index, so a page costs the same at a million rows as at a thousand.

use sqlx::{Database, Encode, QueryBuilder, Type};
use thumbd_codes::Code;

use crate::ids::{JobId, ThumbnailId};
use crate::job::JobStatus;
use crate::timestamp::Timestamp;

/// Which thumbnails [`ThumbnailStore::list_thumbnails`](crate::ThumbnailStore::list_thumbnails)
/// returns: by id, in byte order, those starting with `prefix`, after `after`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThumbnailQuery {
    /// Only ids starting with this (empty: every id).
    pub prefix: String,
    /// Only ids after this one (the last id of the previous page).
    pub after: Option<ThumbnailId>,
    /// At most this many.
    pub limit: u32,
}

impl ThumbnailQuery {
    /// Where the page starts: after the cursor when there is one past the prefix, else at
    /// the prefix (`true`: inclusive). One lower bound, so that a database seeks straight to
    /// it instead of scanning from the prefix to the cursor.
    pub fn lower_bound(&self) -> (&str, bool) {
        match &self.after {
            Some(after) if after.as_str() >= self.prefix.as_str() => (after.as_str(), false),
            _ => (&self.prefix, true),
        }
    }

    /// The ids with `prefix` are exactly those in `[prefix, upper)`: `upper` is `prefix`
    /// with its last character incremented (trailing `char::MAX`s dropped first), since
    /// UTF-8's byte order is the order of code points. `None`: no upper bound.
    pub fn prefix_upper_bound(&self) -> Option<String> {
        let mut chars: Vec<char> = self.prefix.chars().collect();
        while let Some(last) = chars.pop() {
            let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
            if let Some(next) = next {
                chars.push(next);
                return Some(chars.into_iter().collect());
            }
        }
        None
    }
}

impl ThumbnailQuery {
    /// Appends the page's conditions, order and limit to `sql`, a select from `thumbnails`
    /// that ends in its namespace condition; `id` makes the bind value of an id as the
    /// backend stores it (both compare by UTF-8 bytes).
    pub fn push_sql<DB, T>(&self, sql: &mut QueryBuilder<DB>, id: impl Fn(&str) -> T)
    where
        DB: Database,
        T: for<'t> Encode<'t, DB> + Type<DB>,
        i64: for<'t> Encode<'t, DB> + Type<DB>,
    {
        let (lower, inclusive) = self.lower_bound();
        sql.push(if inclusive {
            " AND thumbnail_id >= "
        } else {
            " AND thumbnail_id > "
        })
        .push_bind(id(lower));
        if let Some(upper) = self.prefix_upper_bound() {
            sql.push(" AND thumbnail_id < ").push_bind(id(&upper));
        }
        sql.push(" ORDER BY thumbnail_id LIMIT ")
            .push_bind(i64::from(self.limit));
    }
}

/// The key a job listing is ordered by, newest first: when the job was accepted, then its
/// id (jobs accepted in the same millisecond).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobKey {
    /// `created_at`.
    pub created_at: Timestamp,
    /// The id.
    pub id: JobId,
}

/// Which jobs [`JobStore::list_jobs`](crate::JobStore::list_jobs) returns, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobQuery {
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
    /// Only failed jobs with this code.
    pub code: Option<Code>,
    /// Only jobs older than this key (the last of the previous page).
    pub before: Option<JobKey>,
    /// At most this many.
    pub limit: u32,
}

impl JobQuery {
    /// Appends the page's conditions, order and limit to `sql`, a select from `jobs` that
    /// ends in its namespace condition; `id_cast` follows the cursor's id (`"::uuid"` where
    /// ids are not stored as text).
    pub fn push_sql<DB>(&self, sql: &mut QueryBuilder<DB>, id_cast: &str)
    where
        DB: Database,
        &'static str: for<'t> Encode<'t, DB> + Type<DB>,
        String: for<'t> Encode<'t, DB> + Type<DB>,
        i64: for<'t> Encode<'t, DB> + Type<DB>,
    {
        if let Some(code) = self.code {
            sql.push(" AND status = 'failed' AND error_code = ")
                .push_bind(code.as_str());
        } else if let Some(status) = self.status {
            sql.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(key) = self.before {
            sql.push(" AND (created_at, id) < (")
                .push_bind(key.created_at.0)
                .push(", ")
                .push_bind(key.id.to_string())
                .push(id_cast)
                .push(")");
        }
        sql.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(self.limit));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upper(prefix: &str) -> Option<String> {
        ThumbnailQuery {
            prefix: prefix.into(),
            ..ThumbnailQuery::default()
        }
        .prefix_upper_bound()
    }

    #[test]
    fn the_upper_bound_follows_every_id_with_the_prefix() {
        assert_eq!(upper("cover/"), Some("cover0".into()));
        assert_eq!(upper("a\u{10FFFF}"), Some("b".into()));
        // U+D7FF + 1 is a surrogate: the next character is U+E000.
        assert_eq!(upper("x\u{D7FF}"), Some("x\u{E000}".into()));
        assert_eq!(upper(""), None);
        assert_eq!(upper("\u{10FFFF}"), None);
        for id in ["cover/", "cover/1", "cover/\u{10FFFF}\u{10FFFF}", "cover/é"] {
            assert!(
                id >= "cover/" && id < upper("cover/").unwrap().as_str(),
                "{id}"
            );
        }
        for id in ["cover", "cover0", "cove", "d"] {
            let inside = id >= "cover/" && id < upper("cover/").unwrap().as_str();
            assert!(!inside, "{id}");
        }
    }
}
