import assert from 'node:assert/strict'
import net from 'node:net'
import { test } from 'node:test'
import { createTestDatabase } from '../helpers/db.ts'
import { observersDir } from '../helpers/worker.ts'
import { runCli } from './helpers.ts'

test('watch on a table without a primary key is invalid input: OB001, the fix, exit 2', async (t) => {
  const db = await createTestDatabase('create table keyless (a int)')
  t.after(() => db.drop())
  const { code, output } = await runCli(['watch', 'keyless'], { DATABASE_URL: db.url })
  assert.equal(code, 2, output)
  assert.match(output, /^OB001: table keyless has no primary key\. Add a primary key/m)
  const { rows } = await db.pool.query(
    "select count(*)::int as n from pg_trigger where tgrelid = 'keyless'::regclass and not tgisinternal",
  )
  assert.equal(rows[0].n, 0, 'no trigger attached')
})

test('validate --strict-env counts an unset variable as a problem, not a warning', async () => {
  const dir = await observersDir({
    'ok.json': {
      name: 'ok',
      entity: 'orders',
      events: ['INSERT'],
      actions: [{ type: 'webhook', url_env: 'CODES_TEST_UNSET_URL' }],
    },
  })
  const { code, output } = await runCli(['validate', dir, '--strict-env'], {})
  assert.equal(code, 2)
  assert.match(output, /^OB005: .*ok\.json at \/actions\/0: webhook needs CODES_TEST_UNSET_URL/m)
  assert.doesNotMatch(output, /warning:/)
  assert.match(output, /1 problem\(s\), 1 unset variable\(s\)/)
})

test('a taken PORT is OB001 naming the variable and the port, exit 2', async (t) => {
  const db = await createTestDatabase()
  t.after(() => db.drop())
  const taken = net.createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.after(() => taken.close())
  const port = (taken.address() as net.AddressInfo).port
  const dir = await observersDir({})
  const { code, output } = await runCli(['start'], {
    DATABASE_URL: db.url,
    OBSERVERS_DIR: dir,
    PORT: String(port),
    LOG_PRETTY: 'false',
  })
  assert.equal(code, 2, output)
  assert.match(output, new RegExp(`^OB001: PORT ${port} is already in use on 127\\.0\\.0\\.1`, 'm'))
})
