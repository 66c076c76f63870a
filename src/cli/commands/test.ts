import { readFile } from 'node:fs/promises'
import { text as readStream } from 'node:stream/consumers'
import type { Command } from 'commander'
import type { ExplainNode } from '../../conditions/index.ts'
import { didYouMean } from '../../conditions/suggest.ts'
import { loadConfig } from '../../config/config.ts'
import { ConfigError, coerceError, describeError, ErrorCode } from '../../errors/errors.ts'
import { parseExact, stringifyExact } from '../../json/exact.ts'
import { loadObservers } from '../../observers/load.ts'
import type { Observer } from '../../observers/types.ts'
import { type DryRun, dryRun, eventFrom } from '../../ops/dry-run.ts'
import { printJson } from './dlq.ts'

async function readEvent(file: string | undefined): Promise<unknown> {
  if (file === undefined && process.stdin.isTTY) {
    throw new ConfigError(ErrorCode.InvalidConfig, 'give the event with --event <file.json> or on stdin')
  }
  const source = file === undefined || file === '-' ? 'stdin' : file
  let text: string
  try {
    text = source === 'stdin' ? await readStream(process.stdin) : await readFile(source, 'utf8')
  } catch (err) {
    throw new ConfigError(ErrorCode.InvalidConfig, `cannot read ${source}: ${coerceError(err).message}`)
  }
  try {
    return parseExact(text)
  } catch (err) {
    throw new ConfigError(ErrorCode.InvalidConfig, `${source} is not valid JSON: ${coerceError(err).message}`)
  }
}

async function findObserver(dir: string, name: string): Promise<Observer> {
  const { observers, problems } = await loadObservers(dir)
  const found = observers.find((o) => o.name === name)
  if (found) return found
  for (const p of problems) console.error(describeError(p))
  throw new ConfigError(
    ErrorCode.NoMatchingObservers,
    `no valid, enabled observer named "${name}" in ${dir}${didYouMean(
      name,
      observers.map((o) => o.name),
    )}${problems.length ? ` (${problems.length} problem(s) above)` : ''}`,
  )
}

const show = (v: unknown) => (v === undefined ? '' : stringifyExact(v))

function printTree(node: ExplainNode, depth: number): void {
  const verdict = node.skipped ? '(skipped)' : node.error ? `error: ${node.error}` : show(node.value)
  console.log(`${'  '.repeat(depth)}${node.text}  →  ${verdict}`)
  for (const child of node.children) printTree(child, depth + 1)
}

function print(run: DryRun): void {
  const e = run.event
  console.log(`observer ${run.observer}: ${e.event} ${e.entity} ${e.entity_id}\n`)
  for (const [name, check] of Object.entries(run.checks)) {
    console.log(`  ${check.ok ? 'pass' : 'FAIL'}  ${name.padEnd(10)} ${check.detail}`)
  }
  if (run.condition) {
    console.log('\ncondition, each sub-expression and its value:')
    printTree(run.condition, 1)
  }
  console.log(
    run.fires
      ? `\nFIRES: ${run.actions.length} action(s) would run`
      : '\ndoes NOT fire; the actions would render as:',
  )
  for (const a of run.actions) {
    console.log(`\naction ${a.index}: ${a.type}`)
    for (const [key, value] of Object.entries(a.rendered)) console.log(`  ${key}: ${show(value)}`)
    for (const err of a.errors) console.log(`  ERROR ${err}`)
  }
  console.log('\n(dry run: nothing was sent)')
}

export function register(program: Command): void {
  program
    .command('test')
    .description('dry run: does an event fire an observer, and what would its actions send (nothing is sent)')
    .argument('<observer>', 'observer name')
    .option('--event <file>', 'event JSON file (`-` or omitted: stdin)')
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { event?: string; json?: boolean }) => {
      const config = loadConfig()
      const observer = await findObserver(config.observersDir, name)
      const run = dryRun(observer, eventFrom(await readEvent(opts.event), observer), config)
      if (opts.json) printJson(run)
      else print(run)
    })
}
