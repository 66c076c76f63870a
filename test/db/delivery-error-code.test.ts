import assert from 'node:assert/strict'
import { test } from 'node:test'
import { migrate } from '../../src/db/migrate.ts'
import { createTestDatabase } from '../helpers/db.ts'

test('migration 0018 gives the records written before it the code at the head of their error', async (t) => {
  const db = await createTestDatabase()
  t.after(() => db.drop())
  // The record as migration 0017 left it: no code column, and its view (migration 0016's).
  await db.pool.query(`
    drop view observers.delivery_log;
    alter table observers.deliveries drop column last_error_code;
    create view observers.delivery_log as
      select delivery_id, observer, action_index, entity, entity_id, seq, outcome, attempts,
             first_attempt_at, last_attempt_at, delivered_at, last_error, duration_ms, output
        from observers.deliveries
       order by last_attempt_at desc;
    delete from observers.migrations where id = 18`)
  await db.pool.query(
    `insert into observers.deliveries (delivery_id, observer, action_index, event_id, entity, entity_id,
       seq, outcome, attempts, first_attempt_at, last_attempt_at, last_error, job_id, job_attempt)
     select id, 'old', 0, id, 'public.items', id, 0, outcome, 1, now(), now(), error, gen_random_uuid(), 1
       from (values ('a', 'dead_lettered', 'OB013: gave up after 3 attempts; last error: OB006: 503'),
                    ('b', 'retrying', 'OB006: webhook answered 503'),
                    ('c', 'delivered', null),
                    ('d', 'given_up', 'refused: OB007 is not at the head')) as x(id, outcome, error)`,
  )
  assert.deepEqual(await migrate(db.pool), ['0018_delivery_error_code.sql'])
  const { rows } = await db.pool.query(
    'select delivery_id, last_error_code from observers.delivery_log order by delivery_id',
  )
  assert.deepEqual(rows, [
    { delivery_id: 'a', last_error_code: 'OB013' },
    { delivery_id: 'b', last_error_code: 'OB006' },
    { delivery_id: 'c', last_error_code: null },
    { delivery_id: 'd', last_error_code: null },
  ])
})
