import { mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import Table from 'cli-table3'
import type { ScenarioResult } from './harness.ts'
import type { BenchOptions, ScenarioName } from './options.ts'
import type { ProfileSummary } from './profile.ts'
import { mib } from './stats.ts'

export const resultsDir = path.resolve(import.meta.dirname, 'results')

export interface Machine {
  cpus: number
  cpuModel: string
  memoryMiB: number
  os: string
  node: string
  postgres: string
  /** embedded (.data/bench-postgres) or DATABASE_URL */
  database: string
}

export function describeMachine(postgres: string, embedded: boolean): Machine {
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryMiB: mib(os.totalmem()),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres,
    database: embedded ? 'embedded' : 'DATABASE_URL',
  }
}

export interface Report {
  startedAt: string
  finishedAt: string
  machine: Machine
  options: BenchOptions
  scenarios: Partial<Record<ScenarioName, ScenarioResult['figures'] | { error: string }>>
  /** With --profile: where the worker spent its CPU. */
  profiles?: ProfileSummary[]
}

export async function writeReport(report: Report): Promise<string> {
  await mkdir(resultsDir, { recursive: true })
  const file = path.join(resultsDir, `${report.startedAt.replace(/[:.]/g, '-')}.json`)
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`)
  return file
}

/** The report table; goals are shown and judged but never decide the exit code. */
export function renderTable(results: Array<[ScenarioName, ScenarioResult]>): string {
  const table = new Table({
    head: ['scenario', 'metric', 'value', 'goal', ''],
    style: { head: [], border: [] },
  })
  for (const [name, result] of results) {
    for (const row of result.rows) {
      const verdict = row.met === undefined ? '' : row.met ? 'met' : 'MISSED'
      table.push([name, row.metric, { hAlign: 'right', content: row.value }, row.goal ?? '', verdict])
    }
  }
  return table.toString()
}

export function renderMachine(m: Machine): string {
  return [
    `machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryMiB} MiB, ${m.os}`,
    `node ${m.node}; ${m.postgres.split(' on ')[0]} (${m.database})`,
  ].join('\n')
}
