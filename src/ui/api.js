// Calls /api with the session cookie; changes carry the page's CSRF token in a header.
const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? ''

export async function api(path, { method = 'GET', body } = {}) {
  const headers = { accept: 'application/json' }
  if (method !== 'GET') headers['x-observers-csrf'] = csrf
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  if (res.status === 401) {
    location.assign('/ui/login')
    throw new Error('signed out')
  }
  const data = await res.json()
  if (!res.ok) throw new Error(`${data.code}: ${data.message}`)
  return data
}

/** Builds an element; children are nodes or text (never parsed as HTML). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v)
    else if (k === 'text') node.textContent = v
    else node.setAttribute(k, v === true ? '' : String(v))
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue
    node.append(c instanceof Node ? c : document.createTextNode(String(c)))
  }
  return node
}

/** The page's polite live region: results of actions, read out by screen readers. */
export function announce(message, kind = 'info') {
  let region = document.getElementById('status')
  if (!region) {
    region = el('p', { id: 'status', role: 'status', 'aria-live': 'polite' })
    document.getElementById('page').before(region)
  }
  region.className = kind
  region.textContent = message
}

/** A labelled form field. */
export function field(label, input) {
  const id = input.id || `f-${input.name}`
  input.id = id
  return el('div', { class: 'field' }, el('label', { for: id, text: label }), input)
}

export const fmtTime = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '')
export const fmtDate = (iso) => (iso ? new Date(iso).toLocaleString() : '')
