-- Delivery output (docs/database.md): what the destination answered on a delivery's last
-- successful attempt (a webhook's status, an email's message id and counts, a search engine's
-- task), kept in the delivery record for as long as the change log, beside the outcome.
--
-- It used to live only on pg-boss's completed job. pg-boss's complete() takes one output for all
-- the jobs it settles, so jobs completed together each needed one more statement to store their
-- own, which wrote every job row once more; the delivery record is written for each of them anyway.

alter table observers.deliveries add column output jsonb;

create or replace view observers.delivery_log as
  select delivery_id, observer, action_index, entity, entity_id, seq, outcome, attempts,
         first_attempt_at, last_attempt_at, delivered_at, last_error, duration_ms, output
    from observers.deliveries
   order by last_attempt_at desc;
