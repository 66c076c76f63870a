import { compileCondition, parseCondition } from './src/conditions/index.ts'
import { shipped } from './test/conditions/helpers.ts'
for (const bad of ["status = 'shipped", 'total >> 5', 'CHANGED_TO(status)', "CHANGD(status)", "status = 'a' extra", '', 'a < b < c', 'event.tenant = 1', 'total > null', "CHANGED(after.status)"]) {
  try { parseCondition(bad) } catch (e: any) { console.log(e.message + '\n') }
}
const c = compileCondition('customer > 5', { onError: (e) => console.log(e.message) }); c.test(shipped)
compileCondition('status', { onError: (e) => console.log(e.message) }).test(shipped)
console.log(JSON.stringify(compileCondition(`status_changed_to('shipped') AND (total > 100 OR customer.tier = 'gold')`).explain(shipped), null, 2))
