import assert from 'node:assert/strict'
import { test } from 'node:test'
import { exited, spawnCli } from '../helpers/process.ts'
import { observersDir } from '../helpers/worker.ts'

async function validate(args: string[], env: Record<string, string> = {}) {
  const child = spawnCli(['validate', ...args], env)
  const { code } = await exited(child)
  return { code, output: child.output.join('') }
}

const hook = { type: 'webhook', url_env: 'VALIDATE_TEST_HOOK_URL' }

test('validate lists every problem with its code and exits 2', async () => {
  const dir = await observersDir({
    'ok.json': { name: 'ok', entity: 'orders', events: ['INSERT'], actions: [hook] },
    'bad.json': {
      name: 'bad',
      entity: 'orders',
      events: ['INSERT'],
      condition: 'total >> 5',
      actions: [{ type: 'fax' }],
    },
  })
  const { code, output } = await validate([dir])
  assert.equal(code, 2)
  assert.match(output, /OB003: .*bad\.json at \/condition/)
  assert.match(output, /OB011: .*bad\.json at \/actions\/0\/type/)
  assert.match(output, /1 observer\(s\) valid, 2 problem\(s\)/)
})

test('an unset variable is a warning, and an error with --strict-env', async () => {
  const dir = await observersDir({
    'ok.json': { name: 'ok', entity: 'orders', events: ['INSERT'], actions: [hook] },
  })
  const loose = await validate([dir])
  assert.equal(loose.code, 0)
  assert.match(
    loose.output,
    /warning: OB005: .*ok\.json at \/actions\/0: webhook needs VALIDATE_TEST_HOOK_URL/,
  )
  assert.equal((await validate([dir, '--strict-env'])).code, 2)
  const set = await validate([dir, '--strict-env'], { VALIDATE_TEST_HOOK_URL: 'http://127.0.0.1:9/x' })
  assert.equal(set.code, 0)
  assert.match(set.output, /1 observer\(s\) valid, 0 problem\(s\), 0 unset variable\(s\)/)
})
