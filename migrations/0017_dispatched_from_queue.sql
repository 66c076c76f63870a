-- What is dispatched is what observers.change_pending no longer holds (docs/database.md).
--
-- Every claim also set change_log.dispatched_at on the rows it took: a second version of each
-- change-log row, both row images included, written (with its WAL and, later, vacuum's work)
-- only to say what change_pending already says. Claims now only read the change log, and
-- retention deletes old rows that are not pending.

alter table observers.change_log drop column dispatched_at;
