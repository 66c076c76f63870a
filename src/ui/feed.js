import { el, field, fmtTime } from './api.js'

const page = document.getElementById('page')
const maxRows = 200
const params = new URLSearchParams(location.search)

const observer = el('input', { name: 'observer', value: params.get('observer') ?? '' })
const entity = el('input', { name: 'entity', value: params.get('entity') ?? '', placeholder: 'orders' })
const select = (name, options) =>
  el(
    'select',
    { name },
    options.map(([value, label]) =>
      el('option', { value, text: label, selected: params.get(name) === value }),
    ),
  )
const outcome = select('outcome', [
  ['', 'any'],
  ['success', 'success'],
  ['retry', 'retry'],
  ['failed', 'failed'],
])
const event = select('event', [
  ['', 'any'],
  ['INSERT', 'INSERT'],
  ['UPDATE', 'UPDATE'],
  ['DELETE', 'DELETE'],
])
const form = el(
  'form',
  { class: 'filters', 'aria-label': 'Feed filters' },
  field('Observer', observer),
  field('Table', entity),
  field('Event', event),
  field('Outcome', outcome),
  el('button', { type: 'submit', text: 'Apply' }),
)
const state = el('p', { id: 'feed-state', role: 'status', text: 'Connecting…' })
const tbody = el('tbody', { id: 'feed' })
const table = el(
  'table',
  { id: 'feed-table' },
  el('caption', { class: 'sr-only', text: 'Executions, newest first' }),
  el(
    'thead',
    {},
    el(
      'tr',
      {},
      ['Time', 'Outcome', 'Observer', 'Action', 'Attempt', 'Change', 'ms', 'Error', ''].map((h) =>
        el('th', { scope: 'col', text: h }),
      ),
    ),
  ),
  tbody,
)
page.append(form, state, el('div', { class: 'table-wrap' }, table))

function row(x) {
  const open =
    x.outcome === 'failed'
      ? el('a', { href: `/ui/dlq/item?delivery=${encodeURIComponent(x.delivery_id)}`, text: 'Open' })
      : ''
  return el(
    'tr',
    { class: `outcome-${x.outcome}`, 'data-delivery': x.delivery_id, 'data-outcome': x.outcome },
    el('td', { text: fmtTime(x.at) }),
    el('td', {}, el('span', { class: `badge ${x.outcome}`, text: x.outcome })),
    el('td', { text: x.observer }),
    el('td', { text: `#${x.action_index} ${x.type}` }),
    el('td', { class: 'num', text: x.attempt }),
    el('td', { text: `${x.event.event} ${x.event.entity} ${x.event.entity_id}` }),
    el('td', { class: 'num', text: x.duration_ms }),
    el('td', { class: 'error-text', text: x.error ? x.error : '' }),
    el('td', {}, open),
  )
}

let source
function connect() {
  source?.close()
  const q = new URLSearchParams()
  for (const input of [observer, entity, event, outcome]) if (input.value) q.set(input.name, input.value)
  source = new EventSource(`/api/stream?${q}`)
  source.addEventListener('open', () => {
    state.textContent = 'Live: new executions appear at the top.'
  })
  source.addEventListener('error', () => {
    state.textContent = 'Disconnected; reconnecting…'
  })
  source.addEventListener('execution', (e) => {
    tbody.prepend(row(JSON.parse(e.data)))
    while (tbody.rows.length > maxRows) tbody.lastElementChild.remove()
  })
  source.addEventListener('gap', () => {
    tbody.prepend(
      el('tr', {}, el('td', { colspan: 9, text: 'Some executions were missed while disconnected.' })),
    )
  })
}

form.addEventListener('submit', (e) => {
  e.preventDefault()
  const q = new URLSearchParams()
  for (const input of [observer, entity, event, outcome]) if (input.value) q.set(input.name, input.value)
  history.replaceState(null, '', `?${q}`)
  tbody.replaceChildren()
  connect()
})
connect()
