import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { ExecutionReport } from '../../src/execute/execute.ts'
import { createExecutionFeed } from '../../src/report/feed.ts'
import { changeEvent, delivery } from '../helpers/action-context.ts'

function report(entityId: string): ExecutionReport {
  return {
    delivery: delivery({ type: 'log' }, changeEvent({ entity_id: entityId })),
    attempt: 1,
    durationMs: 1,
    outcome: 'success',
  }
}

const seqOf = (id: string) => Number(id.split('.')[1])

test('ids count up per feed, and each event is serialized once for every subscriber', () => {
  const feed = createExecutionFeed(3)
  const seen: string[][] = [[], []]
  const frames = new Set<string>()
  for (const list of seen)
    feed.subscribe((e) => {
      list.push(e.id)
      frames.add(e.frame)
    })
  for (const n of ['1', '2']) feed.publish(report(n))
  assert.deepEqual(seen[0], seen[1])
  assert.deepEqual(seen[0]?.map(seqOf), [1, 2])
  assert.equal(frames.size, 2, 'one frame per event, shared')
  assert.equal(feed.head, seen[0]?.[1])
  assert.match([...frames][0] ?? '', /^id: [0-9a-f]+\.1\nevent: execution\ndata: \{.*\}\n\n$/)
})

test('since() replays what is still buffered and names the gap otherwise', () => {
  const feed = createExecutionFeed(3)
  const start = feed.head
  const ids: string[] = []
  feed.subscribe((e) => ids.push(e.id))
  for (const n of ['1', '2', '3', '4', '5']) feed.publish(report(n))
  const [, second, third] = ids as [string, string, string]
  assert.deepEqual(
    (feed.since(second) as Array<{ id: string }>).map((e) => seqOf(e.id)),
    [3, 4, 5],
  )
  assert.deepEqual(feed.since(feed.head), [])
  assert.equal(feed.since(start), 'expired', 'five events since, three kept')
  assert.equal(feed.since(ids[0] ?? ''), 'expired')
  assert.notEqual(feed.since(third), 'expired')
  for (const foreign of ['ffffffff.1', `${feed.head.split('.')[0]}.99`, '3', '', 'x.y', '1e3'])
    assert.equal(feed.since(foreign), 'unknown', foreign)
  assert.equal(createExecutionFeed().since(second), 'unknown', 'another process, another feed')
})
