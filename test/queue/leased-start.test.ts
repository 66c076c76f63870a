import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import pg from 'pg'
import { type EventsFixture, eventsFixture } from '../helpers/events.ts'
import { eventually, runWorker, type TestWorker } from '../helpers/worker.ts'

// Jobs the local runner has slots for start in their dispatch pass, before it commits. A deferred
// trigger on pgboss.job runs at that COMMIT: it waits for an advisory lock the test holds
// ('block'), or fails the first commit it sees ('fail').
const gate = `
  create table commit_gate (mode text not null);
  insert into commit_gate values ('off');
  create sequence commit_failures;
  create function gate_commit() returns trigger language plpgsql as $$
  begin
    case (select mode from commit_gate)
      when 'block' then perform pg_advisory_xact_lock(4242);
      when 'fail' then
        if nextval('commit_failures') = 1 then raise exception 'commit refused by the test'; end if;
      else null;
    end case;
    return null;
  end $$;
  create constraint trigger gate_commit after insert on pgboss.job
    deferrable initially deferred for each row execute function gate_commit();`

let fixture: EventsFixture
let running: TestWorker

before(async () => {
  fixture = await eventsFixture()
  await fixture.db.pool.query(gate)
  // No backstop poll: a fetch in flight keeps the runner's free slots from being leased.
  running = await runWorker(fixture.db.url, fixture.dir, { OBSERVERS_QUEUE_POLL_MS: '600000' })
  // A first change, delivered and completed, outlasts the fetch every runner starts with.
  await fixture.db.pool.query(`insert into events values (0, 'warm-up')`)
  await eventually(async () => (await jobsFor(0))[0] === 'completed', 30_000, 'the first change completed')
})

after(async () => {
  await running?.stop()
  await fixture?.close()
})

const requestsFor = (id: number) =>
  fixture.receiver.requests.filter((r) => JSON.parse(r.body).after.id === id)

const jobsFor = async (id: number) =>
  (
    await fixture.db.pool.query<{ state: string }>(
      `select state from pgboss.job where data -> 'event' -> 'after' ->> 'id' = $1`,
      [String(id)],
    )
  ).rows.map((r) => r.state)

test("a leased job's request goes out while its dispatch pass is still committing", async () => {
  const holder = new pg.Client({ connectionString: fixture.db.url })
  await holder.connect()
  try {
    await holder.query('select pg_advisory_lock(4242)')
    await fixture.db.pool.query(`update commit_gate set mode = 'block'`)
    await fixture.db.pool.query(`insert into events values (1, 'early')`)
    await eventually(() => requestsFor(1).length === 1, 30_000, 'the request, with the commit held')
    assert.deepEqual(await jobsFor(1), [], 'its job is not committed yet')
    await fixture.db.pool.query(`update commit_gate set mode = 'off'`)
    await holder.query('select pg_advisory_unlock(4242)')
    await eventually(
      async () => (await jobsFor(1))[0] === 'completed',
      30_000,
      'its completion, once committed',
    )
    assert.equal(requestsFor(1).length, 1, 'delivered once')
  } finally {
    await holder.end()
  }
})

test('a pass rolled back after its request went out: the change is delivered again, its job completed once', async () => {
  await fixture.db.pool.query(`update commit_gate set mode = 'fail'`)
  await fixture.db.pool.query(`insert into events values (2, 'rolled back')`)
  await eventually(
    async () => (await jobsFor(2))[0] === 'completed',
    30_000,
    'the job of the second pass completed',
  )
  const [first, second, ...more] = requestsFor(2)
  assert.ok(first && second, 'the rolled back pass delivered it, and the next one again')
  assert.deepEqual(more, [])
  assert.equal(first.headers['webhook-id'], second.headers['webhook-id'], 'receivers dedupe it')
  assert.deepEqual(await jobsFor(2), ['completed'])
  assert.ok(
    running.logs.records.some((r) => String(r.msg).includes('pass that started this attempt rolled back')),
    'the dropped attempt is logged',
  )
  const { rows } = await fixture.db.pool.query(
    'select outcome, attempts from observers.deliveries where delivery_id = $1',
    [first.headers['webhook-id']],
  )
  assert.deepEqual(rows, [{ outcome: 'delivered', attempts: 1 }], 'recorded by the attempt that settled')
})
