import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { compileCondition } from '../../src/conditions/index.ts'
import type { AppError } from '../../src/errors/errors.ts'
import {
  deleted,
  diffOnly,
  inserted,
  listedOnly,
  nullToAbsent,
  shipped,
  withEventColumns,
} from './helpers.ts'

const events = { shipped, inserted, deleted, listedOnly, diffOnly, withEventColumns, nullToAbsent }

/** 'unknown' = SQL NULL (test() is false, explain() says null); 'error' = OB004 reported, test() false. */
type Expected = boolean | 'unknown' | 'error'
type Case = readonly [condition: string, event: keyof typeof events, expected: Expected]

const cases: Record<string, readonly Case[]> = {
  'comparison operators': [
    ["status = 'shipped'", 'shipped', true],
    ['status == "shipped"', 'shipped', true],
    ["status != 'shipped'", 'shipped', false],
    ["status <> 'pending'", 'shipped', true],
    ['total > 100', 'shipped', true],
    ['total >= 150', 'shipped', true],
    ['total < 150', 'shipped', false],
    ['total <= 150', 'shipped', true],
    ['total > 150.5', 'shipped', false],
    ['total > -1', 'shipped', true],
    ["status IN ('new', 'shipped')", 'shipped', true],
    ["status NOT IN ('new', 'shipped')", 'shipped', false],
    ["status in ('new')", 'shipped', false],
    ['total IN (1, 150)', 'shipped', true],
    ['discount IS NULL', 'shipped', true],
    ['discount is not null', 'shipped', false],
    ['missing IS NULL', 'shipped', true],
    ['status IS NOT NULL', 'shipped', true],
  ],
  'logic and precedence': [
    ["status = 'shipped' AND total > 100", 'shipped', true],
    ["status = 'shipped' && total > 1000", 'shipped', false],
    ["status = 'x' OR total > 100", 'shipped', true],
    ["status = 'x' || total > 1000", 'shipped', false],
    ["NOT status = 'x'", 'shipped', true],
    ["!(status = 'shipped')", 'shipped', false],
    ['not NOT paid', 'shipped', true],
    // AND binds tighter than OR, whichever side it is on.
    ["status = 'x' AND total > 1000 OR paid", 'shipped', true],
    ["paid OR status = 'x' AND total > 1000", 'shipped', true],
    // NOT binds tighter than AND and OR.
    ['NOT paid OR paid', 'shipped', true],
    ['NOT (paid OR paid)', 'shipped', false],
    ["(status = 'x' OR paid) AND total > 100", 'shipped', true],
    ['true', 'shipped', true],
    ['FALSE', 'shipped', false],
  ],
  'null rules': [
    ["missing = 'x'", 'shipped', 'unknown'],
    ["missing != 'x'", 'shipped', 'unknown'],
    ['missing > 5', 'shipped', 'unknown'],
    ["NOT missing = 'x'", 'shipped', 'unknown'],
    ["missing = 'x' OR paid", 'shipped', true],
    ["missing = 'x' AND paid", 'shipped', 'unknown'],
    ["missing = 'x' AND status = 'nope'", 'shipped', false],
    ['discount = null', 'shipped', true],
    ['discount != null', 'shipped', false],
    ['status <> NULL', 'shipped', true],
    ['null = null', 'shipped', true],
    ['discount = before.discount', 'shipped', 'unknown'],
    ["missing IN ('a', null)", 'shipped', true],
    ["missing IN ('a')", 'shipped', 'unknown'],
    ["missing NOT IN ('a', null)", 'shipped', false],
    ["status NOT IN ('a', null)", 'shipped', true],
    ['missing', 'shipped', 'unknown'],
    ['NOT null', 'shipped', 'unknown'],
  ],
  'exact numbers': [
    ['big = 9007199254740993', 'shipped', true],
    ['big = 9007199254740992', 'shipped', false],
    ['big > 9007199254740992', 'shipped', true],
    ['big < 9007199254740994', 'shipped', true],
    ['price = 12.5', 'shipped', true],
    ['price = 12.50', 'shipped', true],
    ['price > 12.4999999999999999999', 'shipped', true],
    ['total = 150.0', 'shipped', true],
    ['total = 1.5e2', 'shipped', true],
  ],
  'types never coerce': [
    ["total = '150'", 'shipped', false],
    ["total != '150'", 'shipped', true],
    ["total > '100'", 'shipped', 'error'],
    ['status > 5', 'shipped', 'error'],
    ['customer > 5', 'shipped', 'error'],
    ['tags < 1', 'shipped', 'error'],
    ['paid = true', 'shipped', true],
    ["paid = 'true'", 'shipped', false],
    ['paid = 1', 'shipped', false],
    ['status', 'shipped', 'error'],
    ['customer = before.customer', 'shipped', false],
    ['tags = before.tags', 'shipped', true],
    ["status > 'pending'", 'shipped', true],
    ["'Z' < 'a'", 'shipped', true],
    ["'é' > 'z'", 'shipped', true],
    ["'\uffff' < '😀'", 'shipped', true],
  ],
  'strings and escapes': [
    ["quote = 'it''s'", 'shipped', true],
    [String.raw`quote = 'it\'s'`, 'shipped', true],
    [`quote = "it's"`, 'shipped', true],
    [String.raw`path = 'C:\\dir'`, 'shipped', true],
    [String.raw`'\u00e9' = "é"`, 'shipped', true],
    [String.raw`"say \"hi\"" = 'say "hi"'`, 'shipped', true],
    [`"a""b" = 'a"b'`, 'shipped', true],
  ],
  'field resolution': [
    ["customer.tier = 'platinum'", 'shipped', true],
    ["before.customer.tier = 'gold'", 'shipped', true],
    ["old.status = 'pending' AND new.status = 'shipped'", 'shipped', true],
    ["after.status = 'shipped'", 'shipped', true],
    ["AFTER.status = 'shipped'", 'shipped', true],
    ["items.0.sku = 'A1'", 'shipped', true],
    ['items.1.sku IS NULL', 'shipped', true],
    ['status.length IS NULL', 'shipped', true],
    ['customer.constructor IS NULL', 'shipped', true],
    ["`status` = 'shipped'", 'shipped', true],
    ["STATUS = 'shipped'", 'shipped', 'unknown'],
    ['after IS NOT NULL', 'shipped', true],
    ['after IS NULL', 'deleted', true],
    ["status = 'cancelled'", 'deleted', true],
    ["before.status = 'new'", 'inserted', 'unknown'],
  ],
  'event fields': [
    ["event.tenant_id = 'acme'", 'shipped', true],
    ["event.actor_id = 'user-7'", 'shipped', true],
    ["event.entity = 'public.orders' AND event.entity_id = '42'", 'shipped', true],
    ['event.seq = 1', 'shipped', true],
    ["event.event = 'UPDATE'", 'shipped', true],
    ["event = 'UPDATE'", 'shipped', true],
    ["tenant_id = 'acme'", 'shipped', true],
    ["actor_id = 'user-7'", 'shipped', true],
    // A column of the same name wins over the bare event field; event.<name> always reads the event.
    ["tenant_id = 'row-tenant'", 'withEventColumns', true],
    ["event.tenant_id = 'acme'", 'withEventColumns', true],
    ["event = 'signup'", 'withEventColumns', true],
    ["event.event = 'INSERT'", 'withEventColumns', true],
    ["event.txid = '812'", 'shipped', true],
    ['event.txid = 812', 'shipped', false],
  ],
  functions: [
    ['CHANGED(status)', 'shipped', true],
    ['CHANGED(total)', 'shipped', false],
    ['changed(customer.tier)', 'shipped', true],
    ['CHANGED(customer.name)', 'shipped', false],
    ['field_changed(paid)', 'shipped', true],
    ['CHANGED(status)', 'inserted', true],
    ['CHANGED(missing)', 'inserted', false],
    ['CHANGED(status)', 'deleted', false],
    ['CHANGED(status)', 'listedOnly', true],
    ['CHANGED(status)', 'diffOnly', true],
    ['CHANGED(note)', 'nullToAbsent', true],
    ['CHANGED(other)', 'nullToAbsent', false],
    ["CHANGED_TO(status, 'shipped')", 'shipped', true],
    ["CHANGED_TO(status, 'pending')", 'shipped', false],
    ['changed_to(status, "shipped")', 'shipped', true],
    ["status_changed_to('shipped')", 'shipped', true],
    ["STATUS_CHANGED_TO('cancelled')", 'shipped', false],
    ["CHANGED_FROM(status, 'pending')", 'shipped', true],
    ["CHANGED_FROM(status, 'shipped')", 'shipped', false],
    ["CHANGED_TO(status, 'new')", 'inserted', true],
    ['CHANGED_FROM(status, null)', 'inserted', true],
    ['CHANGED_TO(total, 150)', 'shipped', false],
    ["CHANGED_TO(customer.tier, 'platinum')", 'shipped', true],
    ['HAS_FIELD(discount)', 'shipped', true],
    ['HAS_FIELD(missing)', 'shipped', false],
    ['has_field(customer.tier)', 'shipped', true],
    ['HAS_FIELD(customer.zip)', 'shipped', false],
    ['HAS_FIELD(before.status)', 'inserted', false],
    ['HAS_FIELD(tenant_id)', 'shipped', false],
    ['IS_NEW()', 'inserted', true],
    ['is_new()', 'shipped', false],
    ['IS_DELETED()', 'deleted', true],
    ['!is_deleted()', 'shipped', true],
    ['CHANGED(status) = true', 'shipped', true],
    ['CHANGED(total) != false', 'shipped', false],
  ],
  'seed syntaxes': [
    ["status = 'shipped' AND NOT HAS_FIELD(x)", 'shipped', true],
    ['status == "shipped" && !is_deleted()', 'shipped', true],
    [`CHANGED_TO(status, 'shipped') AND (total > 100 OR customer.tier == "gold")`, 'shipped', true],
  ],
  'short-circuit': [
    ["status = 'x' AND customer > 5", 'shipped', false],
    ['paid OR customer > 5', 'shipped', true],
    ['customer > 5 OR paid', 'shipped', 'error'],
    ['NOT (customer > 5)', 'shipped', 'error'],
    ["IS_NEW() OR total > 'x'", 'inserted', true],
    ["IS_NEW() OR total > 'x'", 'shipped', 'error'],
  ],
}

for (const [group, rows] of Object.entries(cases)) {
  describe(group, () => {
    for (const [condition, eventName, expected] of rows) {
      test(`${condition} on ${eventName} is ${expected}`, () => {
        const event = events[eventName]
        const errors: AppError[] = []
        const compiled = compileCondition(condition, { onError: (err) => errors.push(err) })
        assert.equal(compiled.test(event), expected === true)
        if (expected === 'error') {
          assert.equal(errors.length, 1)
          assert.equal(errors[0]!.code, 'OB004')
        } else {
          assert.deepEqual(errors, [])
          assert.equal(compiled.explain(event).value, expected === 'unknown' ? null : expected)
        }
      })
    }
  })
}
