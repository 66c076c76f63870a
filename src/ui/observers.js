import { announce, api, el } from './api.js'

const page = document.getElementById('page')
const intro = el(
  'p',
  {},
  'Counts are what this worker process has seen since it started; "in DLQ" counts the whole database. Refreshed every 2 s.',
)
const tbody = el('tbody')
const table = el(
  'table',
  { id: 'observers-table' },
  el('caption', { class: 'sr-only', text: 'Running observers and their counts' }),
  el(
    'thead',
    {},
    el(
      'tr',
      {},
      [
        'Observer',
        'Table',
        'Events',
        'Actions',
        'Matched',
        'Succeeded',
        'Retried',
        'Failed',
        'In DLQ',
        'p50 ms',
        'p95 ms',
        'Last error',
      ].map((h) => el('th', { scope: 'col', text: h })),
    ),
  ),
  tbody,
)
const problems = el('div', { id: 'problems' })
page.append(intro, el('div', { class: 'table-wrap' }, table), problems)

function row(o) {
  const s = o.stats
  const dlqLink =
    s.in_dlq > 0
      ? el('a', { href: `/ui/dlq?observer=${encodeURIComponent(o.name)}`, text: String(s.in_dlq) })
      : '0'
  return el(
    'tr',
    { 'data-observer': o.name },
    el('th', { scope: 'row', text: o.name }),
    el('td', { text: o.entity }),
    el('td', { text: o.events.join(', ') }),
    el('td', { text: o.actions.map((a) => a.type).join(', ') }),
    el('td', { class: 'num matched', text: s.matched }),
    el('td', { class: 'num succeeded', text: s.succeeded }),
    el('td', { class: 'num retried', text: s.retried }),
    el('td', { class: 'num failed', text: s.failed }),
    el('td', { class: 'num in-dlq' }, dlqLink),
    el('td', { class: 'num', text: s.p50_ms ?? '–' }),
    el('td', { class: 'num', text: s.p95_ms ?? '–' }),
    el('td', {
      class: 'error-text',
      text: s.last_error ? `${s.last_error.code ?? ''} ${s.last_error.message}` : '',
    }),
  )
}

async function refresh() {
  try {
    const data = await api('/api/observers')
    tbody.replaceChildren(...data.observers.map(row))
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
