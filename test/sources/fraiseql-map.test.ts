import assert from 'node:assert/strict'
import { test } from 'node:test'
import { stringifyExact } from '../../src/json/exact.ts'
import { type FraiseqlRow, toFraiseqlEntry } from '../../src/sources/fraiseql/map.ts'
import { entryEventId } from '../../src/sources/ids.ts'

function row(over: Partial<FraiseqlRow>): FraiseqlRow {
  return {
    entry_key: '41',
    id: null,
    tenant_id: null,
    fk_customer_org: null,
    fk_contact: null,
    object_type: 'Order',
    object_id: '6f1c1d1e-0000-4000-8000-000000000001',
    modification_type: 'INSERT',
    object_data: '{"id":1,"status":"new"}',
    object_data_before: null,
    updated_fields: null,
    extra_metadata: null,
    trace_context: null,
    created_at: '2025-03-01T10:00:00.123456Z',
    txid: '812',
    ...over,
  }
}

function event(over: Partial<FraiseqlRow>) {
  const entry = toFraiseqlEntry(row(over), 'fraiseql')
  assert.ok('event' in entry, `expected an event, got ${JSON.stringify(entry)}`)
  return entry.event
}

function malformed(over: Partial<FraiseqlRow>) {
  const entry = toFraiseqlEntry(row(over), 'fraiseql')
  assert.ok('malformed' in entry, `expected a malformed entry, got ${JSON.stringify(entry)}`)
  return entry.malformed
}

test('a row image maps to the event: entity, ids, tenant, actor, metadata, source', () => {
  const e = event({
    id: 'A0B1C2D3-0000-4000-8000-00000000000F',
    fk_customer_org: '77',
    fk_contact: '9',
    extra_metadata: '{"duration_calc_version":2}',
  })
  assert.equal(e.id, 'a0b1c2d3-0000-4000-8000-00000000000f')
  assert.equal(e.seq, 41)
  assert.equal(e.event, 'INSERT')
  assert.equal(e.entity, 'Order')
  assert.equal(e.entity_id, '6f1c1d1e-0000-4000-8000-000000000001')
  assert.deepEqual(e.after, { id: 1, status: 'new' })
  assert.equal(e.before, null)
  assert.deepEqual(e.changed, [])
  assert.equal(e.tenant_id, '77', 'fk_customer_org when there is no tenant_id')
  assert.equal(e.actor_id, '9')
  assert.deepEqual(e.metadata, { duration_calc_version: 2 })
  assert.equal(e.source, 'fraiseql')
  assert.equal(e.txid, '812')
  assert.equal(e.created_at, '2025-03-01T10:00:00.123456Z')
  assert.equal(e.snapshot, undefined)
})

test('tenant_id wins over fk_customer_org; without an id the event id derives from the entry', () => {
  const e = event({ tenant_id: 'b5f6c0de-0000-4000-8000-000000000000', fk_customer_org: '77' })
  assert.equal(e.tenant_id, 'b5f6c0de-0000-4000-8000-000000000000')
  assert.equal(e.id, entryEventId('fraiseql', '41'))
  assert.notEqual(entryEventId('fraiseql', '41'), entryEventId('other', '41'))
})

test('modification types: words and Debezium letters, any case', () => {
  const cases: Array<[string, string]> = [
    ['INSERT', 'INSERT'],
    ['c', 'INSERT'],
    ['update', 'UPDATE'],
    ['U', 'UPDATE'],
    ['DELETE', 'DELETE'],
    ['d', 'DELETE'],
  ]
  for (const [given, expected] of cases)
    assert.equal(event({ modification_type: given }).event, expected, given)
})

test('a Debezium envelope gives before, after and op; op r is a snapshot read delivered as INSERT', () => {
  const update = event({
    modification_type: 'UPDATE',
    object_data:
      '{"op":"u","before":{"id":1,"status":"new"},"after":{"id":1,"status":"paid"},"source":{"db":"x"}}',
  })
  assert.equal(update.event, 'UPDATE')
  assert.deepEqual(update.before, { id: 1, status: 'new' })
  assert.deepEqual(update.after, { id: 1, status: 'paid' })
  assert.deepEqual(update.changed, ['status'])
  const read = event({
    modification_type: 'INSERT',
    object_data: '{"op":"r","before":null,"after":{"id":2}}',
  })
  assert.equal(read.event, 'INSERT')
  assert.equal(read.snapshot, true)
  assert.deepEqual(read.after, { id: 2 })
  const deleted = event({ object_data: '{"op":"d","before":{"id":3},"after":null}' })
  assert.equal(deleted.event, 'DELETE')
  assert.deepEqual(deleted.before, { id: 3 })
  assert.equal(deleted.after, null)
})

test('changed: updated_fields first, then a diff of the images, else every column of the after image', () => {
  const listed = event({ modification_type: 'UPDATE', updated_fields: '["status"]' })
  assert.deepEqual(listed.changed, ['status'])
  const diffed = event({
    modification_type: 'UPDATE',
    object_data: '{"id":1,"status":"paid","total":12.50}',
    object_data_before: '{"id":1,"status":"new","total":12.50}',
  })
  assert.deepEqual(diffed.changed, ['status'])
  const blind = event({ modification_type: 'UPDATE', object_data: '{"b":1,"a":2}' })
  assert.deepEqual(blind.changed, ['a', 'b'])
})

test('a DELETE row image is the before image', () => {
  const e = event({ modification_type: 'DELETE', object_data: '{"id":5}' })
  assert.deepEqual(e.before, { id: 5 })
  assert.equal(e.after, null)
  const withBefore = event({ modification_type: 'DELETE', object_data: null, object_data_before: '{"id":6}' })
  assert.deepEqual(withBefore.before, { id: 6 })
})

test('numbers keep their digits', () => {
  const e = event({ object_data: '{"id":9007199254740993,"total":12.5000000000}' })
  assert.equal(stringifyExact(e.after), '{"id":9007199254740993,"total":12.5000000000}')
})

test('trace_context becomes traceparent, from its parts or as given', () => {
  const parts = event({
    trace_context:
      '{"version":"00","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","parent_id":"00f067aa0ba902b7","trace_flags":1}',
  })
  assert.equal(parts.traceparent, '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')
  const given = event({
    trace_context: '{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}',
  })
  assert.equal(given.traceparent, '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00')
  assert.equal(event({ trace_context: '{"trace_id":"nope"}' }).traceparent, undefined)
})

test('malformed entries say why, with OB009 for unreadable JSON and OB001 for missing or unknown fields', () => {
  const cases: Array<[Partial<FraiseqlRow>, string, RegExp]> = [
    [{ object_data: '{"id":' }, 'OB009', /object_data .* not valid JSON/],
    [{ extra_metadata: 'nope' }, 'OB009', /extra_metadata .* not valid JSON/],
    [{ object_id: null }, 'OB001', /no object_id/],
    [{ object_id: '' }, 'OB001', /no object_id/],
    [{ object_type: null }, 'OB001', /no object_type/],
    [{ modification_type: 'CUSTOM' }, 'OB001', /unknown modification type "CUSTOM"/],
    [{ object_data: '[1,2]' }, 'OB001', /after image is not a JSON object/],
  ]
  for (const [over, code, message] of cases) {
    const m = malformed(over)
    assert.equal(m.code, code, JSON.stringify(over))
    assert.match(m.error, message)
    assert.equal(m.key, '41')
  }
})
