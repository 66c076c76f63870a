import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { type BrowserContext, chromium, type Page } from 'playwright-core'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'

const browserPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const token = 'console-browser-token'
/** UPDATE_SCREENSHOTS=1 writes each page into docs/img for docs/ui.md. */
const screenshots = process.env.UPDATE_SCREENSHOTS === '1' ? path.resolve('docs/img') : undefined

function skipReason(): string | false {
  if (existsSync(browserPath)) return false
  const why = `${browserPath} is missing (apt-get install -y chromium)`
  if (process.env.REQUIRE_SERVICES === '1') throw new Error(`REQUIRE_SERVICES=1 but ${why}`)
  return why
}
const skip = skipReason()

let db: TestDatabase
let worker: TestWorker
let receiver: Receiver
let profile: string
let browser: BrowserContext
let base: string
/** Rows whose status is 'broken' fail at the receiver until this is set. */
let repaired = false

before(async () => {
  if (skip) return
  db = await createTestDatabase()
  await db.pool.query('create table orders (id int primary key, status text not null)')
  receiver = await startReceiver()
  receiver.reply((req) => {
    const broken = JSON.parse(req.body).after?.status === 'broken'
    return broken && !repaired ? { status: 500, body: 'warehouse offline' } : { status: 200 }
  })
  const dir = await observersDir({
    'order-hook.json': {
      name: 'order-hook',
      entity: 'orders',
      events: ['INSERT'],
      actions: [{ type: 'webhook', url: receiver.url }],
      retry: { max_attempts: 1 },
    },
  })
  worker = await runWorker(db.url, dir, { OBSERVERS_API_TOKEN: token })
  base = `http://127.0.0.1:${worker.worker.ops?.port}`
  profile = await mkdtemp(path.join(tmpdir(), 'console-chromium-'))
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: browserPath,
    headless: true,
    viewport: { width: 1200, height: 720 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
})

after(async () => {
  await browser?.close()
  if (profile) await rm(profile, { recursive: true, force: true })
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

/** Fails when the page is wider than a 380 px window: tables and code scroll in their own box. */
async function assertFitsNarrowWindow(page: Page) {
  await page.setViewportSize({ width: 380, height: 720 })
  const overflow = Number(await page.evaluate('document.documentElement.scrollWidth - innerWidth'))
  await page.setViewportSize({ width: 1200, height: 720 })
  assert.ok(overflow <= 0, `${page.url()} is ${overflow} px wider than a 380 px window`)
}

async function shot(page: Page, name: string) {
  if (screenshots) await page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: true })
}

/** The text of the first element `selector` matches, once `accept` likes it. */
function textOf(page: Page, selector: string, accept: (text: string) => boolean, what: string) {
  return eventually(
    async () => {
      const text = await page
        .locator(selector)
        .first()
        .textContent({ timeout: 1000 })
        .catch(() => null)
      return text !== null && accept(text) ? text : undefined
    },
    60_000,
    what,
  )
}

test('sign in, watch counts move, see a failure in the feed, open it, retry it, see it delivered', {
  skip,
}, async () => {
  const page = await browser.newPage()
  await page.goto(`${base}/ui`)
  assert.equal(new URL(page.url()).pathname, '/ui/login')
  await shot(page, 'login')
  // By keyboard: the token field has the focus and a label; Enter submits.
  await page.getByLabel('API token').fill(token)
  await page.keyboard.press('Enter')
  await page.waitForURL(`${base}/ui/observers`)
  assert.ok(!page.url().includes(token))

  const row = 'tr[data-observer="order-hook"]'
  await textOf(page, `${row} td.delivered`, (t) => t === '0', 'the observer row')
  await db.pool.query(`insert into orders select g, 'paid' from generate_series(1, 3) g`)
  await textOf(page, `${row} td.delivered`, (t) => t === '3', 'delivered 3')
  await textOf(page, `${row} td.p95`, (t) => /^\d+$/.test(t), 'a p95 duration')

  // Pause by keyboard: the state is the cluster's, read back from the database.
  await page.getByRole('button', { name: 'Pause order-hook' }).focus()
  await page.keyboard.press('Enter')
  await textOf(page, `${row} td:nth-child(2)`, (t) => t.includes('Paused'), 'the paused state')
  const { rows: paused } = await db.pool.query('select target from observers.paused')
  assert.deepEqual(paused, [{ target: 'order-hook' }])
  const destination = `webhook:${new URL(receiver.url).origin}/`
  await db.pool.query(`insert into observers.breakers values ($1, 5, now(), now() + interval '1 hour')`, [
    destination,
  ])
  await textOf(page, '#breakers-table tbody', (t) => t.includes(destination), 'the open breaker')
  await shot(page, 'observers')
  await page.getByRole('button', { name: `Close the breaker of ${destination}` }).click()
  await textOf(page, '#breakers', (t) => t.includes('None'), 'the breaker closed')
  await page.getByRole('button', { name: 'Resume order-hook' }).click()
  await textOf(page, `${row} td:nth-child(2)`, (t) => t.includes('Running'), 'running again')
  await assertFitsNarrowWindow(page)

  await page.getByRole('link', { name: 'Live feed' }).click()
  await textOf(page, '#feed-state', (t) => t.startsWith('Live'), 'the feed connected')
  await db.pool.query(`insert into orders values (4, 'paid'), (5, 'broken')`)
  const failed = page.locator('#feed tr[data-outcome="failed"]')
  await textOf(
    page,
    '#feed tr[data-outcome="failed"]',
    (t) => t.includes('warehouse offline'),
    'a failure in the feed',
  )
  await textOf(
    page,
    '#feed tr[data-outcome="success"]',
    (t) => t.includes('orders 4'),
    'a success in the feed',
  )
  await shot(page, 'feed')

  const list = await browser.newPage()
  await list.goto(`${base}/ui/dlq`)
  await textOf(list, '#dlq-table tbody tr', (t) => t.includes('warehouse offline'), 'the DLQ list')
  await shot(list, 'dlq')
  await assertFitsNarrowWindow(list)
  // The observers page names the hour's last failure, read from the database like its counts.
  await list.goto(`${base}/ui/observers`)
  await textOf(
    list,
    `${row} td.error-text`,
    (t) => t.startsWith('OB013: ') && t.includes('warehouse offline'),
    "the hour's last error",
  )
  // Samples other workers wrote over the last hour, before this one started: a burst drained.
  await db.pool.query(
    `insert into observers.backlog_samples (at, backlog, oldest_seconds)
     select date_bin('15 s', now() - g * interval '15 s', timestamptz 'epoch'),
            round(400 * exp(-power((g - 120) / 25.0, 2))), round(90 * exp(-power((g - 118) / 25.0, 2)))
       from generate_series(4, 239) g
     on conflict do nothing`,
  )
  await list.goto(`${base}/ui/backlog`)
  const charted = await list.evaluate(() =>
    fetch('/api/backlog')
      .then((r) => r.json() as Promise<{ samples: unknown[] }>)
      .then((d) => d.samples.length),
  )
  assert.ok(charted >= 236, `${charted} samples: the cluster's hour, not this worker's`)
  await list.locator('#backlog-chart canvas').first().waitFor({ timeout: 60_000 })
  await textOf(list, '#backlog-now', (t) => t.startsWith('Now:'), 'the backlog summary')
  await shot(list, 'backlog')
  await list.close()

  await failed.getByRole('link', { name: 'Open' }).click()
  await page.waitForURL(/\/ui\/dlq\/item\?delivery=/)
  await textOf(page, '#attempts tbody', (t) => t.includes('500'), 'the attempt with its status')
  await textOf(page, '#request-line', (t) => t === `POST ${receiver.url}`, 'the request line')
  await textOf(page, '#request-body', (t) => /"status": "broken"/.test(t), 'the request body')
  await shot(page, 'dlq-item')
  await assertFitsNarrowWindow(page)
  repaired = true
  await page.getByRole('button', { name: 'Retry' }).click()
  await textOf(page, '#status', (t) => t.startsWith('Delivered'), 'delivered after the retry')

  const delivered = await eventually(() => {
    const mine = receiver.requests.filter((r) => JSON.parse(r.body).after?.id === 5)
    return mine.length >= 2 ? mine : undefined
  })
  assert.equal(delivered.length, 2, 'the failed request and the retried one')
  const { rows } = await db.pool.query('select count(*)::int as n from observers.dlq')
  assert.equal(rows[0].n, 0, 'the dead letter is gone')
})

test('purge by filter shows the count, then deletes only what matches', { skip }, async () => {
  repaired = false
  await db.pool.query(`insert into orders values (6, 'broken'), (7, 'broken')`)
  await eventually(async () => {
    const { rows } = await db.pool.query('select count(*)::int as n from observers.dlq')
    return rows[0].n === 2
  })
  const page = await browser.newPage()
  await page.goto(`${base}/ui/dlq`)
  await page.getByLabel('Observer').fill('order-hook')
  await page.getByLabel('Error code').fill('OB999')
  await page.getByRole('button', { name: 'Filter', exact: true }).click()
  await page.getByRole('button', { name: 'Purge all matching the filter…' }).click()
  await textOf(page, '#status', (t) => t.startsWith('No dead letters'), 'nothing matches OB999')

  await page.getByLabel('Error code').fill('OB013')
  await page.getByRole('button', { name: 'Filter', exact: true }).click()
  await page.getByRole('button', { name: 'Purge all matching the filter…' }).click()
  await textOf(page, '#purge-question', (t) => t.startsWith('Delete 2 dead letter(s)'), 'the count')
  await shot(page, 'dlq-purge')
  // Escape cancels; nothing is gone.
  await page.keyboard.press('Escape')
  assert.equal(await page.locator('#purge-confirm').isHidden(), true)
  await page.getByRole('button', { name: 'Purge all matching the filter…' }).click()
  await page.getByRole('button', { name: 'Delete 2' }).click()
  await textOf(page, '#status', (t) => t === 'Deleted 2 dead letter(s).', 'the purge')
  const { rows } = await db.pool.query('select count(*)::int as n from observers.dlq')
  assert.equal(rows[0].n, 0)
  await page.close()
})
