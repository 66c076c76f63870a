import type { Command } from 'commander'
import { parseTarget } from '../../control/targets.ts'
import { ConfigError, ErrorCode } from '../../errors/errors.ts'
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

/** `observers breaker close <destination>`: closes a circuit breaker by hand, in every worker. */
export function registerBreaker(program: Command): void {
  program
    .command('breaker')
    .description('circuit breakers per destination')
    .command('close <destination>')
    .description('close an open circuit breaker by hand; its waiting deliveries run at once')
    .action(async (destination: string) => {
      const closed = await withPool(async (pool) => {
        const { rows } = await pool.query<{ closed: boolean }>(
          'select observers.close_breaker($1) as closed',
          [destination],
        )
        return rows[0]?.closed ?? false
      })
      console.log(closed ? `${destination}: closed` : `${destination}: no breaker (already closed)`)
    })
}
