import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'

const token = 'console-auth-token'
let db: TestDatabase
let worker: TestWorker
let base: string

before(async () => {
  db = await createTestDatabase()
  worker = await runWorker(db.url, await observersDir({}), { OBSERVERS_API_TOKEN: token })
  base = `http://127.0.0.1:${worker.worker.ops?.port}`
})

after(async () => {
  await worker?.stop()
  await db?.drop()
})

const signIn = (given: string) =>
  fetch(`${base}/ui/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: given }).toString(),
    redirect: 'manual',
  })

test('the console signs in with the token once and then works on an HttpOnly, SameSite=Strict cookie', async () => {
  const anonymous = await fetch(`${base}/ui/observers`, { redirect: 'manual' })
  assert.equal(anonymous.status, 303)
  assert.equal(anonymous.headers.get('location'), '/ui/login')

  const wrong = await signIn('not-the-token')
  assert.equal(wrong.status, 401)
  assert.equal(wrong.headers.get('set-cookie'), null)

  const ok = await signIn(token)
  assert.equal(ok.status, 303)
  assert.equal(ok.headers.get('location'), '/ui/observers')
  const setCookie = ok.headers.get('set-cookie') ?? ''
  assert.match(setCookie, /^observers_session=[A-Za-z0-9_-]{43}; /)
  assert.match(setCookie, /; HttpOnly/)
  assert.match(setCookie, /; SameSite=Strict/)
  assert.ok(!setCookie.includes(token) && !(ok.headers.get('location') ?? '').includes(token))
  const cookie = setCookie.split(';')[0] as string

  const page = await fetch(`${base}/ui/observers`, { headers: { cookie } })
  assert.equal(page.status, 200)
  assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/)
  const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(await page.text())?.[1]
  assert.ok(csrf)

  assert.equal((await fetch(`${base}/api/observers`, { headers: { cookie } })).status, 200)
  const forged = await fetch(`${base}/api/dlq/retry`, { method: 'POST', headers: { cookie } })
  assert.equal(forged.status, 403)
  assert.equal(((await forged.json()) as { code: string }).code, 'forbidden')
  const wrongCsrf = await fetch(`${base}/api/dlq/retry`, {
    method: 'POST',
    headers: { cookie, 'x-observers-csrf': 'guess' },
  })
  assert.equal(wrongCsrf.status, 403)
  const real = await fetch(`${base}/api/dlq/retry`, {
    method: 'POST',
    headers: { cookie, 'x-observers-csrf': csrf },
  })
  assert.equal(real.status, 200)

  const out = await fetch(`${base}/ui/logout`, {
    method: 'POST',
    headers: { cookie, 'x-observers-csrf': csrf },
    redirect: 'manual',
  })
  assert.equal(out.status, 303)
  assert.match(out.headers.get('set-cookie') ?? '', /Max-Age=0/)
  assert.equal((await fetch(`${base}/api/observers`, { headers: { cookie } })).status, 401)
})

test('the console serves uPlot from the package, not a CDN', async () => {
  const js = await fetch(`${base}/ui/vendor/uPlot.esm.js`)
  assert.equal(js.status, 200)
  assert.match(js.headers.get('content-type') ?? '', /javascript/)
  assert.match(await js.text(), /export \{ uPlot as default \}|export default/)
  assert.equal((await fetch(`${base}/ui/vendor/..%2Fpackage.json`)).status, 404)
})
