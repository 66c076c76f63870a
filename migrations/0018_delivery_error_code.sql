-- The delivery record's error code (docs/database.md): the last attempt's OB code in a column of
-- its own, written from the error that carries it, as observers.dlq shows last_error_code beside
-- last_error. Readers used to take it back out of the message's head.

alter table observers.deliveries add column last_error_code text;

-- Rows written before carry the code only at the head of their message. Only failed attempts
-- have one, so the rows rewritten are those, not the whole record.
update observers.deliveries
   set last_error_code = substring(last_error from '^(OB[0-9]{3}): ')
 where last_error ~ '^OB[0-9]{3}: ';

-- Replaced, not dropped: grants a user gave on the view stay. A replaced view can only gain
-- columns at its end, so the code comes last.
create or replace view observers.delivery_log as
  select delivery_id, observer, action_index, entity, entity_id, seq, outcome, attempts,
         first_attempt_at, last_attempt_at, delivered_at, last_error, duration_ms, output,
         last_error_code
    from observers.deliveries
   order by last_attempt_at desc;
