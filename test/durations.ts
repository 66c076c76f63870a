/**
 * How long each test file ran in earlier runs, so test/run.ts can start the longest first: with
 * files run a few at a time, a long file started last would run on alone at the end.
 * The default export is a node:test reporter that adds up each file's top-level tests and
 * merges them into .data/test-durations.json (a file's own setup outside its tests is not counted).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'

const root = path.resolve(import.meta.dirname, '..')
const durationsFile = path.join(root, '.data/test-durations.json')

/** Milliseconds per test file (relative to the repository), from earlier runs; empty before the first. */
export function readDurations(): Record<string, number> {
  try {
    return JSON.parse(readFileSync(durationsFile, 'utf8')) as Record<string, number>
  } catch {
    return {}
  }
}

interface TestEvent {
  type: string
  data: { file?: string; nesting?: number; details?: { duration_ms?: number } }
}

export default async function* durations(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  const ran = new Map<string, number>()
  for await (const { type, data } of source) {
    if ((type !== 'test:pass' && type !== 'test:fail') || data.nesting !== 0 || !data.file) continue
    const file = path.relative(root, data.file)
    ran.set(file, (ran.get(file) ?? 0) + (data.details?.duration_ms ?? 0))
  }
  if (ran.size === 0) return
  const merged = { ...readDurations(), ...Object.fromEntries([...ran].map(([f, ms]) => [f, Math.round(ms)])) }
  mkdirSync(path.dirname(durationsFile), { recursive: true })
  writeFileSync(durationsFile, `${JSON.stringify(merged, null, 1)}\n`)
}
