import { announce, api, el, fmtDate } from './api.js'

const page = document.getElementById('page')
const params = new URLSearchParams(location.search)

async function load() {
  const delivery = params.get('delivery')
  if (delivery) {
    const found = await api(`/api/dlq?delivery_id=${encodeURIComponent(delivery)}&limit=1`)
    if (found.items.length === 0) return undefined
    return api(`/api/dlq/${encodeURIComponent(found.items[0].id)}`)
  }
  const id = params.get('id')
  return id ? api(`/api/dlq/${encodeURIComponent(id)}`) : undefined
}

const pre = (value) => el('pre', { tabindex: 0 }, el('code', { text: JSON.stringify(value, null, 2) }))

/**
 * Watches the live feed for this delivery's next outcome. `opened` resolves once the stream is
 * open (or cannot open), so a retried attempt that runs at once is not missed; `heard()` tells
 * whether an outcome has been announced already.
 */
function watch(d) {
  const source = new EventSource(`/api/stream?observer=${encodeURIComponent(d.observer)}`)
  // No timer: a retry sent before the stream is open could finish unseen on a slow machine. A
  // stream that cannot open (the worker's client limit) errors instead, and the retry goes ahead.
  const opened = new Promise((resolve) => {
    source.addEventListener('open', resolve, { once: true })
    source.addEventListener('error', resolve, { once: true })
  })
  let heard = false
  source.addEventListener('execution', (e) => {
    const x = JSON.parse(e.data)
    if (x.delivery_id !== d.delivery_id) return
    heard = true
    if (x.outcome === 'success') {
      announce(`Delivered (attempt ${x.attempt}, ${x.duration_ms} ms).`, 'success')
      source.close()
    } else if (x.outcome === 'failed') {
      announce(`Failed again: ${x.error}`, 'error')
      source.close()
    } else {
      announce(`Attempt ${x.attempt} failed, retrying: ${x.error}`)
    }
  })
  return { opened, heard: () => heard }
}

/** A body as sent, indented when it is JSON. */
function bodyText(body) {
  try {
    return JSON.stringify(JSON.parse(body), null, 2)
  } catch {
    return body
  }
}

/** The request the last attempt sent, rendered again by the worker with secrets redacted. */
function requestSection(r) {
  const title = el('h2', {
    id: 'request-title',
    text: 'Request (as the last attempt sent it, secrets redacted)',
  })
  const box = el('section', { id: 'request', 'aria-labelledby': 'request-title' }, title)
  if (r === null) box.append(el('p', { text: 'A source entry that never became an event: no request.' }))
  else if (r.kind === 'error')
    box.append(el('p', { class: 'error-text', text: `Cannot render it: ${r.error}` }))
  else if (r.kind === 'options') {
    box.append(
      el('p', { text: 'Not an HTTP action: its options, rendered for this delivery.' }),
      pre(r.options),
      ...r.errors.map((e) => el('p', { class: 'error-text', text: e })),
    )
  } else {
    box.append(
      el('p', {}, el('code', { id: 'request-line', text: `${r.method} ${r.url}` })),
      el(
        'div',
        { class: 'table-wrap' },
        el(
          'table',
          { id: 'request-headers' },
          el('caption', { text: 'Headers' }),
          el(
            'thead',
            {},
            el(
              'tr',
              {},
              ['Name', 'Value'].map((h) => el('th', { scope: 'col', text: h })),
            ),
          ),
          el(
            'tbody',
            {},
            Object.entries(r.headers).map(([k, v]) =>
              el(
                'tr',
                {},
                el('th', { scope: 'row' }, el('code', { text: k })),
                el('td', {}, el('code', { text: v })),
              ),
            ),
          ),
        ),
      ),
      el('h3', { text: 'Body' }),
      el('pre', { tabindex: 0, id: 'request-body' }, el('code', { text: bodyText(r.body) })),
      el('p', {
        class: 'note',
        text: 'webhook-timestamp, traceparent and the signature differ on every attempt.',
      }),
    )
  }
  return box
}

function render(d) {
  const retry = el('button', { type: 'button', id: 'retry', text: 'Retry' })
  const remove = el('button', { type: 'button', class: 'danger', text: 'Delete' })
  retry.addEventListener('click', async () => {
    retry.disabled = true
    remove.disabled = true
    try {
      const watching = watch(d)
      await watching.opened
      const r = await api(`/api/dlq/${encodeURIComponent(d.id)}/retry`, { method: 'POST' })
      // The delivery can end before this answer arrives: keep the outcome already announced.
      if (!watching.heard()) announce(`Retried as job ${r.job_ids[0]}; waiting for the delivery…`)
    } catch (err) {
      announce(err.message, 'error')
      retry.disabled = false
      remove.disabled = false
    }
  })
  remove.addEventListener('click', async () => {
    if (!confirm('Delete this dead letter for good?')) return
    try {
      await api(`/api/dlq/${encodeURIComponent(d.id)}`, { method: 'DELETE' })
      announce('Deleted.')
      retry.disabled = true
      remove.disabled = true
    } catch (err) {
      announce(err.message, 'error')
    }
  })
  // A malformed source entry has no queue to go back to: it can only be inspected and deleted.
  retry.hidden = d.observer === null
  const facts = [
    ['Observer', d.observer ?? '(a source entry that could not become an event)'],
    ['Action', d.action_index === null ? d.action_type : `#${d.action_index} ${d.action_type}`],
    ['Change', [d.event, d.entity, d.entity_id].filter((v) => v !== null).join(' ')],
    ['Delivery id', d.delivery_id],
    ['Dead letter id', d.id],
    ['Failed at', fmtDate(d.failed_at)],
    ['Queue', d.source_queue ?? ''],
    ['Last error', d.last_error ?? ''],
  ]
  const attempts = el(
    'table',
    { id: 'attempts' },
    el('caption', { text: 'Attempts' }),
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        ['#', 'At', 'Code', 'HTTP status', 'ms', 'Error'].map((h) => el('th', { scope: 'col', text: h })),
      ),
    ),
    el(
      'tbody',
      {},
      d.attempt_history.map((a) =>
        el(
          'tr',
          {},
          el('td', { class: 'num', text: a.attempt }),
          el('td', { text: fmtDate(a.at) }),
          el('td', {}, el('code', { text: a.code })),
          el('td', { class: 'num', text: a.status ?? '' }),
          el('td', { class: 'num', text: a.duration_ms }),
          el('td', { class: 'error-text', text: a.error }),
        ),
      ),
    ),
  )
  page.replaceChildren(
    el('div', { class: 'toolbar', role: 'group', 'aria-label': 'Dead-letter actions' }, retry, remove),
    el(
      'dl',
      { class: 'facts' },
      facts.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]),
    ),
    el('div', { class: 'table-wrap' }, attempts),
    requestSection(d.request),
    el('h2', { text: 'Action (as dispatched, *_env unresolved)' }),
    pre(d.delivery.action),
    el('h2', { text: 'Event' }),
    pre(d.delivery.event),
  )
}

try {
  const d = await load()
  if (d) render(d)
  else page.replaceChildren(el('p', { text: 'No such dead letter: it may have been retried or deleted.' }))
} catch (err) {
  announce(err.message, 'error')
}
