import type { Command } from 'commander'
import { parseTarget } from '../../control/targets.ts'
import { ConfigError, ErrorCode } from '../../errors.ts'
import { withPool } from '../context.ts'

/**
 * Pauses or resumes through the SQL functions, so every worker of the database learns it
 * (NOTIFY observers_control, and their 2-second re-read), running or started later.
 */
async function setPaused(text: string, paused: boolean): Promise<void> {
  if (!parseTarget(text)) {
    throw new ConfigError(ErrorCode.InvalidConfig, `"${text}" is not an observer name or name#index`)
  }
  const fn = paused ? 'observers.pause_observer' : 'observers.resume_observer'
  const changed = await withPool(async (pool) => {
    const { rows } = await pool.query<{ changed: boolean }>(`select ${fn}($1) as changed`, [text])
    return rows[0]?.changed ?? false
  })
  const state = paused ? 'paused' : 'resumed'
  console.log(changed ? `${text}: ${state}` : `${text}: already ${state === 'paused' ? 'paused' : 'running'}`)
}

export function register(program: Command): void {
  program
    .command('pause <observer>')
    .description('pause an observer (name) or one action (name#index) in every worker; its deliveries wait')
    .action((target: string) => setPaused(target, true))
  program
    .command('resume <observer>')
    .description('resume a paused observer or action; its waiting deliveries run in commit order')
    .action((target: string) => setPaused(target, false))
}
