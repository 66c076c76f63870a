import { announce, api, el, fmtDate } from './api.js'

const page = document.getElementById('page')
const intro = el(
  'p',
  {},
  'Delivered, retrying, failed, the p50/p95 durations and the last error count every worker: deliveries whose last attempt settled in the last hour, from the database. "In DLQ" counts the whole database. Refreshed every 2 s; the figures of the hour are at most 10 s old.',
)
const columns = [
  'Observer',
  'State',
  'Control',
  'Table',
  'Events',
  'Actions',
  'Delivered (1 h)',
  'Retrying',
  'Failed',
  'In DLQ',
  'p50 ms',
  'p95 ms',
  'Last error (1 h)',
]
const tbody = el('tbody')
const table = el(
  'table',
  { id: 'observers-table' },
  el('caption', { class: 'sr-only', text: 'Running observers, their state and counts' }),
  el(
    'thead',
    {},
    el(
      'tr',
      {},
      columns.map((h) => el('th', { scope: 'col', text: h })),
    ),
  ),
  tbody,
)
const breakers = el('section', { id: 'breakers', 'aria-labelledby': 'breakers-title' })
const problems = el('div', { id: 'problems' })
page.append(intro, el('div', { class: 'table-wrap' }, table), breakers, problems)

async function control(path, done) {
  try {
    await api(path, { method: 'POST' })
    announce(done, 'success')
  } catch (err) {
    announce(err.message, 'error')
  }
  await refresh()
}

/** What stops an observer's deliveries: a pause (whole or per action) or an open breaker. */
function stateOf(o) {
  const notes = []
  for (const a of o.actions) {
    if (a.paused && !o.paused) notes.push(`action #${a.index} paused`)
    if (a.breaker_open) notes.push(`#${a.index} breaker open`)
  }
  const badge = o.paused
    ? el('span', { class: 'badge failed', text: 'Paused' })
    : el('span', { class: 'badge success', text: 'Running' })
  return [badge, ...notes.map((n) => el('div', { class: 'note nowrap', text: n }))]
}

// Rows are updated in place, so a refresh never takes the keyboard focus off a button.
const rows = new Map()

function createRow(name) {
  const cells = Object.fromEntries(
    [
      'state',
      'control',
      'entity',
      'events',
      'actions',
      'delivered',
      'retrying',
      'failed',
      'dlq',
      'p50',
      'p95',
      'error',
    ].map((k) => [k, el('td')]),
  )
  for (const k of ['delivered', 'retrying', 'failed', 'dlq', 'p50', 'p95']) cells[k].className = `num ${k}`
  cells.error.className = 'error-text'
  const toggle = el('button', { type: 'button', class: 'pause' })
  toggle.addEventListener('click', () => {
    const paused = toggle.dataset.paused === 'true'
    const verb = paused ? 'resume' : 'pause'
    control(`/api/observers/${encodeURIComponent(name)}/${verb}`, `${name} ${paused ? 'resumed' : 'paused'}.`)
  })
  const tr = el('tr', { 'data-observer': name }, el('th', { scope: 'row', text: name }), Object.values(cells))
  cells.control.append(toggle)
  return { tr, cells, toggle }
}

function update(r, o) {
  const { cells, toggle } = r
  const a = o.activity
  r.tr.dataset.state = o.paused ? 'paused' : 'running'
  cells.state.replaceChildren(...stateOf(o))
  cells.state.className = 'nowrap'
  cells.entity.textContent = o.entity
  cells.events.textContent = o.events.join(', ')
  cells.actions.textContent = o.actions.map((x) => x.type).join(', ')
  cells.delivered.textContent = a.delivered
  cells.retrying.textContent = a.retrying
  cells.failed.textContent = a.failed
  cells.dlq.replaceChildren(
    o.stats.in_dlq > 0
      ? el('a', { href: `/ui/dlq?observer=${encodeURIComponent(o.name)}`, text: String(o.stats.in_dlq) })
      : '0',
  )
  cells.p50.textContent = a.p50_ms ?? '–'
  cells.p95.textContent = a.p95_ms ?? '–'
  const e = o.stats.last_error
  // Messages recorded by a worker carry their code at the head already (`OB013: …`).
  cells.error.textContent = !e
    ? ''
    : e.code && !e.message.startsWith(e.code)
      ? `${e.code} ${e.message}`
      : e.message
  toggle.dataset.paused = String(o.paused)
  toggle.textContent = o.paused ? 'Resume' : 'Pause'
  toggle.setAttribute('aria-label', `${o.paused ? 'Resume' : 'Pause'} ${o.name}`)
}

function renderRows(observers) {
  const names = new Set(observers.map((o) => o.name))
  for (const [name, r] of rows) {
    if (names.has(name)) continue
    r.tr.remove()
    rows.delete(name)
  }
  for (const o of observers) {
    let r = rows.get(o.name)
    if (!r) {
      r = createRow(o.name)
      rows.set(o.name, r)
    }
    update(r, o)
    tbody.append(r.tr)
  }
}

let shownBreakers = ''

/** Open breakers, each with its button; rebuilt only when the set changes, for the same reason. */
function renderBreakers(open) {
  const key = JSON.stringify(open)
  if (key === shownBreakers) return
  shownBreakers = key
  const title = el('h2', { id: 'breakers-title', text: 'Open circuit breakers' })
  if (open.length === 0) {
    breakers.replaceChildren(title, el('p', { text: 'None: every destination is taking deliveries.' }))
    return
  }
  const row = (b) =>
    el(
      'tr',
      { 'data-destination': b.destination },
      el('th', { scope: 'row' }, el('code', { text: b.destination })),
      el('td', { class: 'num', text: b.failures }),
      el('td', { text: fmtDate(b.opened_at) }),
      el(
        'td',
        {},
        el('button', {
          type: 'button',
          text: 'Close breaker',
          'aria-label': `Close the breaker of ${b.destination}`,
          onclick: () =>
            control(`/api/breakers/${encodeURIComponent(b.destination)}/close`, `Closed ${b.destination}.`),
        }),
      ),
    )
  breakers.replaceChildren(
    title,
    el(
      'div',
      { class: 'table-wrap' },
      el(
        'table',
        { id: 'breakers-table' },
        el('caption', { class: 'sr-only', text: 'Destinations whose deliveries wait' }),
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            ['Destination', 'Failures', 'Opened at', 'Control'].map((h) =>
              el('th', { scope: 'col', text: h }),
            ),
          ),
        ),
        el('tbody', {}, open.map(row)),
      ),
    ),
  )
}

async function refresh() {
  try {
    const data = await api('/api/observers')
    renderRows(data.observers)
    renderBreakers(data.breakers)
    const all = [...data.problems, ...data.reload_problems]
    problems.replaceChildren(
      ...(all.length === 0
        ? []
        : [
            el('h2', { text: 'Problems' }),
            el(
              'ul',
              {},
              all.map((p) => el('li', {}, el('code', { text: p.code }), ` ${p.message}`)),
            ),
          ]),
    )
  } catch (err) {
    announce(`Could not load observers: ${err.message}`, 'error')
  }
}

await refresh()
setInterval(refresh, 2000)
