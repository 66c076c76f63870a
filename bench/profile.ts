import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
}

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: CallFrame }>
  samples: number[]
  timeDeltas: number[]
}

/** Where a frame's code lives: an npm package, a file of ours, a Node internal, or native code. */
function owner(url: string): string {
  if (!url) return '(native)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg?.[1]) return pkg[1]
  if (url.startsWith('node:')) return 'node'
  const src = /\/(src\/.+)$/.exec(url)
  return src?.[1] ?? url
}

const notWork = new Set(['(idle)', '(program)', '(root)'])

export interface ProfileSummary {
  file: string
  busyMs: number
  byOwner: Array<{ owner: string; ms: number; share: number }>
  byFunction: Array<{ fn: string; ms: number; share: number }>
}

/** Self time of a V8 CPU profile, grouped by owner and by function; idle time left out. */
export function summarizeProfile(file: string, profile: CpuProfile, top = 15): ProfileSummary {
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]))
  const byOwner = new Map<string, number>()
  const byFunction = new Map<string, number>()
  let busyUs = 0
  profile.samples.forEach((id, i) => {
    const frame = frames.get(id)
    const us = profile.timeDeltas[i] ?? 0
    if (!frame || notWork.has(frame.functionName)) return
    busyUs += us
    const who = owner(frame.url)
    byOwner.set(who, (byOwner.get(who) ?? 0) + us)
    const fn = `${frame.functionName || '(anonymous)'} ${who}:${frame.lineNumber + 1}`
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us)
  })
  const rank = <K extends string>(m: Map<string, number>, key: K) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => ({
        [key]: k,
        ms: Math.round(us / 1000),
        share: Math.round((us / busyUs) * 1000) / 10,
      }))
  return {
    file,
    busyMs: Math.round(busyUs / 1000),
    byOwner: rank(byOwner, 'owner') as ProfileSummary['byOwner'],
    byFunction: rank(byFunction, 'fn') as ProfileSummary['byFunction'],
  }
}

/** Summaries of the profiles written into `dir` since `since` (ms since epoch). */
export async function summarizeProfiles(dir: string, since: number): Promise<ProfileSummary[]> {
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.cpuprofile'))
  const out: ProfileSummary[] = []
  for (const f of files.sort()) {
    const full = path.join(dir, f)
    const stamp = /CPU\.(\d{8})\.(\d{6})/.exec(f)
    if (stamp && profileTime(stamp[1] ?? '', stamp[2] ?? '') < since - 1000) continue
    out.push(summarizeProfile(full, JSON.parse(await readFile(full, 'utf8')) as CpuProfile))
  }
  return out
}

/** Node names profiles CPU.<yyyymmdd>.<hhmmss>..., in local time. */
function profileTime(date: string, time: string): number {
  const [y, mo, d] = [date.slice(0, 4), date.slice(4, 6), date.slice(6, 8)].map(Number)
  const [h, mi, s] = [time.slice(0, 2), time.slice(2, 4), time.slice(4, 6)].map(Number)
  return new Date(y ?? 0, (mo ?? 1) - 1, d ?? 1, h ?? 0, mi ?? 0, s ?? 0).getTime()
}

export function renderProfile(s: ProfileSummary): string {
  const lines = [`${path.basename(s.file)}: ${s.busyMs} ms busy`]
  for (const o of s.byOwner.slice(0, 8)) lines.push(`  ${String(o.share).padStart(5)} %  ${o.owner}`)
  lines.push('  hottest functions (self time):')
  for (const f of s.byFunction.slice(0, 10)) lines.push(`  ${String(f.share).padStart(5)} %  ${f.fn}`)
  return lines.join('\n')
}
