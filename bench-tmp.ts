import { compileCondition } from './src/conditions/index.ts'
import { parseExact } from './src/json/exact.ts'
import type { ChangeEvent } from './src/event.ts'
const mk = (i: number): ChangeEvent => ({
  id: 'u', seq: i, event: 'UPDATE', entity: 'public.orders', entity_id: String(i),
  before: parseExact(`{"id":${i},"status":"pending","total":${i % 200},"customer":{"tier":"${i % 3 ? 'gold' : 'silver'}"}}`) as any,
  after: parseExact(`{"id":${i},"status":"${i % 2 ? 'shipped' : 'pending'}","total":${i % 200},"customer":{"tier":"${i % 3 ? 'gold' : 'silver'}"}}`) as any,
  changed: i % 2 ? ['status'] : [], tenant_id: 'acme', actor_id: null, txid: '1', created_at: 'x',
})
const events = Array.from({ length: 1024 }, (_, i) => mk(i))
const c = compileCondition(`CHANGED_TO(status, 'shipped') AND (total > 100 OR customer.tier == "gold")`)
let hits = 0
for (let round = 0; round < 5; round++) {
  const n = 5_000_000
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) if (c.test(events[i & 1023]!)) hits++
  const ns = Number(process.hrtime.bigint() - t0)
  console.log(`${((n / ns) * 1e9 / 1e6).toFixed(1)}M evals/s`)
}
console.log(hits)
