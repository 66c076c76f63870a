import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { queueName } from '../../src/queue/boss.ts'
import { type EventsFixture, eventsFixture } from '../helpers/events.ts'
import { eventually, runWorker, type TestWorker } from '../helpers/worker.ts'

// The runners' backstop poll is ten minutes and the queue sends no NOTIFY: a job is fetched
// within a test's timeout only if the dispatcher that enqueued it woke this process's runner.
const noPoll = { OBSERVERS_QUEUE_POLL_MS: '600000' }
const queue = queueName('webhook', 'plain')

let fixture: EventsFixture
let running: TestWorker

before(async () => {
  fixture = await eventsFixture()
  running = await runWorker(fixture.db.url, fixture.dir, noPoll)
  await running.worker.queue.updateQueue(queue, { notify: false })
})

after(async () => {
  await running?.stop()
  await fixture?.close()
})

const delivered = () => fixture.receiver.requests.map((r) => JSON.parse(r.body).after.id as number)

test('jobs the local dispatcher enqueues are fetched without a NOTIFY or a poll', async () => {
  assert.equal((await running.worker.queue.getQueue(queue))?.notify, false)
  // One change after another: the runner's fetch at start-up cannot be what finds the second.
  for (const id of [1, 2]) {
    await fixture.db.pool.query('insert into events values ($1, $2)', [id, 'local'])
    await eventually(() => delivered().includes(id), 30_000, `change ${id} delivered`)
  }
  assert.deepEqual(delivered(), [1, 2])
})
