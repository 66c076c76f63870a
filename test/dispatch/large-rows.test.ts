import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { assertDrains, spawnCli, waitForOutput } from '../helpers/process.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir } from '../helpers/worker.ts'

const mb = 1024 * 1024
const rows = 60
const rowBytes = 4 * mb
// A worker heap this small ran out on the first batch of a row-counted claim (500 rows at most).
const heapMb = 256

let db: TestDatabase
let receiver: Receiver

before(async () => {
  db = await createTestDatabase(`create table blobs (id int primary key, body text not null);
    select observers.watch('blobs')`)
  receiver = await startReceiver()
})

after(async () => {
  await receiver?.close()
  await db?.drop()
})

/** Inserts rows `first`..`last` with a body of `bytes` bytes each, in one transaction. */
function insertBlobs(first: number, last: number, bytes: number) {
  return db.pool.query(
    `insert into blobs select g, repeat(md5(g::text), $3::int / 32) from generate_series($1::int, $2::int) g`,
    [first, last, bytes],
  )
}

test('a backlog of multi-MB rows drains on a small heap; an oversized change is dead-lettered; later changes flow', async (t) => {
  for (let first = 1; first <= rows; first += 10) await insertBlobs(first, first + 9, rowBytes)
  await insertBlobs(rows + 1, rows + 1, 9 * mb)
  await insertBlobs(rows + 2, rows + 5, rowBytes)

  const dir = await observersDir({
    'blobs.json': {
      name: 'blobs',
      entity: 'blobs',
      events: ['INSERT'],
      // The receiver keeps what it is sent: the row's id is enough to tell the changes apart.
      actions: [{ type: 'webhook', url: `${receiver.url}/blobs/{{ id }}`, body_template: '{{ id }}' }],
    },
  })
  const worker = spawnCli(['start'], {
    DATABASE_URL: db.url,
    OBSERVERS_DIR: dir,
    PORT: '0',
    OBSERVERS_MAX_CHANGE_BYTES: String(8 * mb),
    NODE_OPTIONS: `--max-old-space-size=${heapMb}`,
  })
  t.after(() => worker.kill('SIGKILL'))
  await waitForOutput(worker, /loaded 1 observer/)

  const delivered = () => new Set(receiver.requests.map((r) => Number(r.body)))
  await eventually(
    () => delivered().size >= rows + 4 || (worker.exitCode !== null ? 'exited' : undefined),
    // Bounds a failure only: 36 s alone, over 150 s with two suites beside each other on a loaded
    // machine (the small heap collects often, and the CPU is shared).
    420_000,
    `${rows + 4} deliveries`,
  )
  assert.equal(worker.exitCode, null, `the worker is still running:\n${worker.output.join('').slice(-3000)}`)
  const expected = [...Array.from({ length: rows }, (_, i) => i + 1), rows + 2, rows + 3, rows + 4, rows + 5]
  assert.deepEqual(
    [...delivered()].sort((a, b) => a - b),
    expected,
    'every row but the oversized one',
  )

  // Deliveries start while their dispatch pass commits: the pass that dead-letters the oversized
  // change may still be committing when the changes claimed with it arrive.
  const deadLetters = async () =>
    (await db.pool.query(`select action_type, entity_id, last_error_code, last_error from observers.dlq`))
      .rows
  await eventually(async () => (await deadLetters()).length > 0, 30_000, 'the dead letter')
  const dead = await deadLetters()
  assert.equal(dead.length, 1, 'one dead letter')
  assert.equal(dead[0].action_type, 'malformed')
  assert.equal(dead[0].entity_id, String(rows + 1))
  assert.equal(dead[0].last_error_code, 'OB009')
  assert.match(dead[0].last_error, /more than OBSERVERS_MAX_CHANGE_BYTES \(8388608\)/)

  await db.pool.query(`insert into blobs values (1000, 'small')`)
  await eventually(() => delivered().has(1000), 30_000, 'the later small change')
  await waitForOutput(worker, /malformed and was dead-lettered/)
  await assertDrains(worker)
})
