import fc from 'fast-check'
import { condition } from './test/conditions/sql-conditions.ts'
const s = fc.sample(condition, { numRuns: 600, seed: 3 })
console.log('with 9007', s.filter(c => c.src.includes('900719925474099')).length, 'with 12.5', s.filter(c => /12\.5|12\.4/.test(c.src)).length, 'orderings', s.filter(c => / [<>]=? /.test(c.src)).length)
console.log(s.slice(0, 20).map(c => c.src).join('\n'))
