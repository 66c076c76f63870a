import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import pg from 'pg'
import { compileCondition } from '../../src/conditions/index.ts'
import type { AppError } from '../../src/errors/errors.ts'
import { condition, type Generated } from './sql-conditions.ts'
import { type EventCase, eventCase } from './sql-rows.ts'

const databaseUrl = process.env.TEST_DATABASE_URL
const casesPerQuery = 10
const queries = 150

/** One round trip: each case's SQL evaluated over its own row, results in case order (null = SQL NULL). */
async function evaluateInPostgres(
  client: pg.Client,
  cases: [Generated, EventCase][],
): Promise<(boolean | null)[]> {
  const params: unknown[] = []
  const items = cases.map(([cond, ev]) => {
    const n = params.push(ev.after, ev.before, ev.kind, ev.changed)
    const row = `select $${n - 3}::jsonb as after, $${n - 2}::jsonb as before, $${n - 1}::text as kind, $${n}::text[] as changed`
    return `(select (${cond.sql}) from (${row}) r)`
  })
  const result = await client.query<{ results: (boolean | null)[] }>(
    `select array[${items.join(', ')}]::boolean[] as results`,
    params,
  )
  return result.rows[0]!.results
}

test('conditions agree with Postgres evaluating the same expression over the same jsonb rows', {
  skip: databaseUrl === undefined ? 'TEST_DATABASE_URL is not set; no Postgres to compare against' : false,
}, async (t) => {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  t.after(() => client.end())
  const batch = fc.array(fc.tuple(condition, eventCase), {
    minLength: casesPerQuery,
    maxLength: casesPerQuery,
  })
  await fc.assert(
    fc.asyncProperty(batch, async (cases) => {
      const expected = await evaluateInPostgres(client, cases)
      cases.forEach(([cond, ev], i) => {
        const errors: AppError[] = []
        const compiled = compileCondition(cond.src, { onError: (err) => errors.push(err) })
        const context = `${cond.src}\n  sql: ${cond.sql}\n  before: ${ev.before}\n  after: ${ev.after}`
        assert.deepEqual(errors, [], context)
        assert.equal(compiled.explain(ev.event).value, expected[i], context)
        assert.equal(compiled.test(ev.event), expected[i] === true, context)
      })
    }),
    { numRuns: queries },
  )
})
