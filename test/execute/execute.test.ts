import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { loadConfig } from '../../src/config/config.ts'
import { executeDelivery } from '../../src/execute/execute.ts'
import { createLogger } from '../../src/log/log.ts'
import { delivery } from '../helpers/action-context.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'

let receiver: Receiver

before(async () => {
  receiver = await startReceiver()
  receiver.reply(['hang'])
})

after(() => receiver?.close())

const deps = { config: loadConfig({}), log: createLogger('silent') }

test('an attempt cut short by shutdown goes back to the queue, even on the last attempt', async () => {
  const d = delivery({ type: 'webhook', url: receiver.url })
  const shutdown = new AbortController()
  const outcome = executeDelivery(
    {
      id: 'job',
      queue: 'observers.webhook',
      attempt: d.retry.max_attempts,
      delivery: d,
      signal: shutdown.signal,
    },
    deps,
  )
  await receiver.waitFor(1)
  shutdown.abort(new Error('the worker shut down during the attempt'))
  const result = await outcome
  assert.equal(result.kind, 'requeue', 'no verdict on the delivery')
})

test('a timeout on the last attempt is the final failure', async () => {
  const d = delivery({ type: 'webhook', url: receiver.url, timeout_ms: 200 })
  const result = await executeDelivery(
    {
      id: 'job',
      queue: 'observers.webhook',
      attempt: d.retry.max_attempts,
      delivery: d,
      signal: new AbortController().signal,
    },
    deps,
  )
  assert.equal(result.kind, 'failed')
  assert.match(result.kind === 'failed' ? result.record.error : '', /OB013: gave up after \d+ attempts/)
})
