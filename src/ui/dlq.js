import { announce, api, el, field, fmtDate } from './api.js'

const page = document.getElementById('page')
const params = new URLSearchParams(location.search)
const names = ['observer', 'type', 'entity', 'code', 'since', 'until']
const inputs = Object.fromEntries(names.map((n) => [n, el('input', { name: n, value: params.get(n) ?? '' })]))
inputs.since.placeholder = '1h, 2025-01-31'
inputs.until.placeholder = '15m, 2025-02-01'
inputs.code.placeholder = 'OB013'
const limit = el(
  'select',
  { name: 'limit' },
  ['25', '50', '100', '500'].map((v) =>
    el('option', { value: v, text: v, selected: (params.get('limit') ?? '50') === v }),
  ),
)
const form = el(
  'form',
  { class: 'filters', 'aria-label': 'Dead-letter filters' },
  field('Observer', inputs.observer),
  field('Action type', inputs.type),
  field('Table', inputs.entity),
  field('Error code', inputs.code),
  field('Since', inputs.since),
  field('Until', inputs.until),
  field('Per page', limit),
  el('button', { type: 'submit', text: 'Filter' }),
)
const all = el('input', { type: 'checkbox', id: 'select-all', 'aria-label': 'Select all on this page' })
const tbody = el('tbody')
const table = el(
  'table',
  { id: 'dlq-table' },
  el('caption', { class: 'sr-only', text: 'Dead letters, newest first' }),
  el(
    'thead',
    {},
    el(
      'tr',
      {},
      el('th', { scope: 'col' }, all),
      ['Failed at', 'Observer', 'Action', 'Change', 'Attempts', 'Last error'].map((h) =>
        el('th', { scope: 'col', text: h }),
      ),
    ),
  ),
  tbody,
)
const button = (text, onclick, extra = {}) => el('button', { type: 'button', text, onclick, ...extra })
const newer = button('Newer', () => go(cursors.length - 2), { disabled: true })
const older = button('Older', () => go(cursors.length), { disabled: true })
const actions = el(
  'div',
  { class: 'toolbar', role: 'group', 'aria-label': 'Dead-letter actions' },
  button('Retry selected', () => retrySelected()),
  button('Delete selected', () => deleteSelected(), { class: 'danger' }),
  button('Retry all matching the filter', () => retryMatching()),
  button('Purge all matching the filter…', () => askPurge(), { id: 'purge-matching', class: 'danger' }),
)
// The confirm step of a purge: it names the count before anything is deleted.
const confirmBox = el('div', {
  id: 'purge-confirm',
  class: 'confirm',
  role: 'alertdialog',
  'aria-labelledby': 'purge-question',
  hidden: true,
})
const pager = el(
  'nav',
  { class: 'toolbar', 'aria-label': 'Pages' },
  newer,
  older,
  el('span', { id: 'page-info' }),
)
page.append(form, actions, confirmBox, el('div', { class: 'table-wrap' }, table), pager)

/** cursors[i] is the cursor of page i (page 0 has none). */
let cursors = [undefined]
let next = null

function filter() {
  const f = {}
  for (const n of names) if (inputs[n].value.trim()) f[n] = inputs[n].value.trim()
  return f
}

/** A malformed source entry is a dead letter of no observer and no action. */
const action = (d) => (d.action_index === null ? d.action_type : `#${d.action_index} ${d.action_type}`)

function row(d) {
  const box = el('input', { type: 'checkbox', value: d.id, 'aria-label': `Select dead letter ${d.id}` })
  return el(
    'tr',
    { 'data-id': d.id, 'data-delivery': d.delivery_id },
    el('td', {}, box),
    el(
      'td',
      {},
      el('a', { href: `/ui/dlq/item?id=${encodeURIComponent(d.id)}`, text: fmtDate(d.failed_at) }),
    ),
    el('td', { text: d.observer ?? '(source entry)' }),
    el('td', { text: action(d) }),
    el('td', { text: [d.event, d.entity, d.entity_id].filter((v) => v !== null).join(' ') }),
    el('td', { class: 'num', text: d.attempts }),
    el('td', { class: 'error-text', text: d.last_error ?? '' }),
  )
}

async function go(index) {
  if (index < 0) return
  const q = new URLSearchParams({ ...filter(), limit: limit.value })
  const cursor = index === 0 ? undefined : index < cursors.length ? cursors[index] : next
  if (cursor) q.set('cursor', cursor)
  try {
    const data = await api(`/api/dlq?${q}`)
    cursors = [...cursors.slice(0, index), cursor]
    next = data.next_cursor
    tbody.replaceChildren(
      ...(data.items.length > 0
        ? data.items.map(row)
        : [el('tr', {}, el('td', { colspan: 7, text: 'No dead letters.' }))]),
    )
    all.checked = false
    newer.disabled = index === 0
    older.disabled = !next
    document.getElementById('page-info').textContent = `Page ${index + 1}`
  } catch (err) {
    announce(err.message, 'error')
  }
}

const selected = () => [...tbody.querySelectorAll('input[type=checkbox]:checked')].map((b) => b.value)

async function retrySelected() {
  const ids = selected()
  if (ids.length === 0) return announce('Select dead letters first.')
  let done = 0
  for (const id of ids) {
    try {
      await api(`/api/dlq/${encodeURIComponent(id)}/retry`, { method: 'POST' })
      done++
    } catch (err) {
      announce(err.message, 'error')
    }
  }
  announce(`Retried ${done} dead letter(s).`)
  await go(cursors.length - 1)
}

async function deleteSelected() {
  const ids = selected()
  if (ids.length === 0) return announce('Select dead letters first.')
  if (!confirm(`Delete ${ids.length} dead letter(s) for good?`)) return
  let done = 0
  for (const id of ids) {
    try {
      await api(`/api/dlq/${encodeURIComponent(id)}`, { method: 'DELETE' })
      done++
    } catch (err) {
      announce(err.message, 'error')
    }
  }
  announce(`Deleted ${done} dead letter(s).`)
  await go(cursors.length - 1)
}

async function retryMatching() {
  const f = filter()
  const what = Object.keys(f).length === 0 ? 'every dead letter' : 'every dead letter matching the filter'
  if (!confirm(`Retry ${what}?`)) return
  try {
    const r = await api('/api/dlq/retry', { method: 'POST', body: f })
    announce(`Retried ${r.retried} dead letter(s).`)
  } catch (err) {
    announce(err.message, 'error')
  }
  await go(0)
}

function describeFilter(f) {
  const parts = Object.entries(f).map(([k, v]) => `${k} ${v}`)
  return parts.length === 0 ? 'with no filter: the whole dead-letter queue' : `matching ${parts.join(', ')}`
}

function closeConfirm() {
  confirmBox.hidden = true
  confirmBox.replaceChildren()
  document.getElementById('purge-matching').focus()
}

async function askPurge() {
  const f = filter()
  const body = { ...f, ...(Object.keys(f).length === 0 ? { all: true } : {}) }
  let matched
  try {
    matched = (await api('/api/dlq/purge', { method: 'POST', body: { ...body, dry_run: true } })).matched
  } catch (err) {
    return announce(err.message, 'error')
  }
  if (matched === 0) return announce(`No dead letters ${describeFilter(f)}.`)
  const yes = el('button', { type: 'button', class: 'danger', id: 'purge-yes', text: `Delete ${matched}` })
  const no = el('button', { type: 'button', text: 'Cancel', onclick: closeConfirm })
  yes.addEventListener('click', async () => {
    yes.disabled = true
    try {
      const r = await api('/api/dlq/purge', { method: 'POST', body })
      announce(`Deleted ${r.deleted} dead letter(s).`, 'success')
    } catch (err) {
      announce(err.message, 'error')
    }
    closeConfirm()
    cursors = [undefined]
    await go(0)
  })
  confirmBox.replaceChildren(
    el('p', {
      id: 'purge-question',
      text: `Delete ${matched} dead letter(s) ${describeFilter(f)} for good? This cannot be undone.`,
    }),
    el('div', { class: 'toolbar' }, yes, no),
  )
  confirmBox.hidden = false
  no.focus()
}

confirmBox.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') closeConfirm()
})

all.addEventListener('change', () => {
  for (const b of tbody.querySelectorAll('input[type=checkbox]')) b.checked = all.checked
})
form.addEventListener('submit', (e) => {
  e.preventDefault()
  history.replaceState(null, '', `?${new URLSearchParams({ ...filter(), limit: limit.value })}`)
  cursors = [undefined]
  go(0)
})
go(0)
