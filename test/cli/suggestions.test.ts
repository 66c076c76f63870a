import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { observersDir } from '../helpers/worker.ts'
import { runCli } from './helpers.ts'

const root = path.resolve(import.meta.dirname, '../..')

test('--version prints the package version', async () => {
  const { version } = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as {
    version: string
  }
  const { code, stdout } = await runCli(['--version'], {})
  assert.equal(code, 0)
  assert.equal(stdout.trim(), version)
})

test('a misspelt action type gets a suggestion', async () => {
  const dir = await observersDir({
    'x.json': {
      name: 'x',
      entity: 'orders',
      events: ['INSERT'],
      actions: [{ type: 'webhok', url: 'http://a' }],
    },
  })
  const { code, output } = await runCli(['validate', dir], {})
  assert.equal(code, 2)
  assert.match(
    output,
    /OB011: .*x\.json at \/actions\/0\/type: unknown action type "webhok"; did you mean webhook\?/,
  )
})

test('a misspelt observer name gets a suggestion', async () => {
  const dir = await observersDir({
    'order-shipped.json': {
      name: 'order-shipped',
      entity: 'orders',
      events: ['INSERT'],
      actions: [{ type: 'log', message_template: 'x' }],
    },
  })
  const event = path.join(dir, 'event.json.txt')
  await writeFile(event, JSON.stringify({ event: 'INSERT', after: { id: 1 } }))
  const { code, output } = await runCli(['test', 'order-shiped', '--event', event], { OBSERVERS_DIR: dir })
  assert.equal(code, 2)
  assert.match(
    output,
    /OB002: no valid, enabled observer named "order-shiped" .*; did you mean order-shipped\?/,
  )
})
