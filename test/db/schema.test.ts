import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'

/**
 * The migrated schema, described from the catalogs in a form that does not depend on the server
 * version. A difference from test/schema.sql means a migration changed what users have: edit a new
 * migration, never a shipped one, then regenerate with UPDATE_SCHEMA=1 npm test -- test/db/schema.test.ts.
 */
const describeSchema = `
  select 'relation ' || c.relname || ' ' || c.relkind::text || ': ' || string_agg(
           a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || case when a.attnotnull then ' not null' else '' end
           || case when a.attidentity::text <> '' then ' identity' else '' end
           || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), ''),
           ', ' order by a.attnum) as line
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
   where n.nspname = 'observers' and c.relkind in ('r', 'v')
   group by c.relname, c.relkind
  union all
  select 'index ' || pg_get_indexdef(i.indexrelid)
    from pg_index i join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'observers'
  union all
  select 'function ' || p.proname || '(' || pg_get_function_arguments(p.oid) || ') returns '
         || pg_get_function_result(p.oid) || ' body md5 ' || md5(p.prosrc)
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname = 'observers'
  order by 1`

let db: TestDatabase

before(async () => {
  db = await createTestDatabase()
})

after(async () => {
  await db?.drop()
})

test('the migrated schema matches test/schema.sql', async () => {
  const { rows } = await db.pool.query<{ line: string }>(describeSchema)
  const actual = `${rows.map((r) => r.line).join('\n')}\n`
  const file = new URL('../schema.sql', import.meta.url)
  if (process.env.UPDATE_SCHEMA === '1') await writeFile(file, actual)
  assert.equal(actual, await readFile(file, 'utf8'))
})
