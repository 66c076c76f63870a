import type { BenchContext, ScenarioResult } from '../harness.ts'

export async function runBackfill(_ctx: BenchContext): Promise<ScenarioResult> {
  throw new Error('not yet')
}
