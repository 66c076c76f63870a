import { readFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { HttpError, RequestCode } from '../errors/errors.ts'
import { tokenMatches } from './auth.ts'

import { csrfValid, type Session, sessionCookieHeader } from './sessions.ts'
import type { RouteContext } from './types.ts'

const assetsDir = new URL('../ui/', import.meta.url)
const require = createRequire(import.meta.url)

/** The console's pages: path under /ui, title, and the module that renders it. */
const pages: Record<string, { title: string; module: string }> = {
  observers: { title: 'Observers', module: 'observers.js' },
  feed: { title: 'Live feed', module: 'feed.js' },
  dlq: { title: 'Dead letters', module: 'dlq.js' },
  'dlq/item': { title: 'Dead letter', module: 'dlq-item.js' },
  backlog: { title: 'Backlog', module: 'backlog.js' },
}
const nav = ['observers', 'feed', 'dlq', 'backlog'] as const

/** Files served from /ui/assets (ours) and /ui/vendor (uPlot from the package's dependencies). */
const assets: Record<string, () => URL | string> = {
  'console.css': () => new URL('console.css', assetsDir),
  'api.js': () => new URL('api.js', assetsDir),
  'nav.js': () => new URL('nav.js', assetsDir),
  ...Object.fromEntries(Object.values(pages).map((p) => [p.module, () => new URL(p.module, assetsDir)])),
}
const vendor: Record<string, () => string> = {
  'uPlot.esm.js': () => require.resolve('uplot/dist/uPlot.esm.js'),
  'uPlot.min.css': () => require.resolve('uplot/dist/uPlot.min.css'),
}
const contentTypes: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
}

const securityHeaders = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

function sendHtml(res: ServerResponse, status: number, html: string, headers: Record<string, string> = {}) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'cache-control': 'no-store',
    ...securityHeaders,
    ...headers,
  })
  res.end(html)
}

function redirect(res: ServerResponse, to: string, headers: Record<string, string> = {}) {
  res.writeHead(303, { location: to, 'cache-control': 'no-store', ...headers })
  res.end()
}

function head(title: string, csrf = ''): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="${escapeHtml(csrf)}">
<title>${escapeHtml(title)} · pg-observers</title>
<link rel="stylesheet" href="/ui/assets/console.css">
</head>`
}

function pageHtml(key: string, session: Session | undefined, signedIn: boolean): string {
  const page = pages[key] as { title: string; module: string }
  const links = nav
    .map((n) => {
      const current = key === n || (n === 'dlq' && key === 'dlq/item') ? ' aria-current="page"' : ''
      return `<li><a href="/ui/${n}"${current}>${escapeHtml((pages[n] as { title: string }).title)}</a></li>`
    })
    .join('')
  const signOut = signedIn ? '<button type="button" id="sign-out">Sign out</button>' : ''
  return `${head(page.title, session?.csrf)}
<body>
<a class="skip" href="#main">Skip to content</a>
<header>
<span class="brand">pg-observers</span>
<nav aria-label="Console"><ul>${links}</ul></nav>
${signOut}
</header>
<main id="main" tabindex="-1">
<h1>${escapeHtml(page.title)}</h1>
<div id="page"></div>
</main>
<script type="module" src="/ui/assets/nav.js"></script>
<script type="module" src="/ui/assets/${page.module}"></script>
</body>
</html>
`
}

function loginHtml(error?: string): string {
  const alert = error ? `<p class="error" role="alert" id="login-error">${escapeHtml(error)}</p>` : ''
  return `${head('Sign in')}
<body>
<main id="main" class="login">
<h1>pg-observers</h1>
<form method="post" action="/ui/login"${error ? ' aria-describedby="login-error"' : ''}>
${alert}
<label for="token">API token (OBSERVERS_API_TOKEN)</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
`
}

const maxFormBytes = 8192

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > maxFormBytes) throw new HttpError(413, RequestCode.BodyTooLarge, 'sign-in form over 8 KiB')
    chunks.push(chunk)
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
}

async function serveFile(res: ServerResponse, file: URL | string, name: string) {
  const body = await readFile(file)
  res.writeHead(200, {
    'content-type': contentTypes[name.split('.').pop() ?? ''] ?? 'application/octet-stream',
    'content-length': body.length,
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
  })
  res.end(body)
}

/**
 * The console at /ui. With OBSERVERS_API_TOKEN set, a browser signs in once with the token (a
 * form POST, so the token never appears in a URL) and gets an HttpOnly, SameSite=Strict session
 * cookie; the page then calls /api with that cookie and, for changes, its CSRF token in a header.
 * Without a token the server is loopback-only and the console is open, as /api is.
 */
export async function handleUi(ctx: RouteContext): Promise<void> {
  const { req, res, url, config } = ctx
  const method = req.method ?? 'GET'
  const path = url.pathname.replace(/^\/ui\/?/, '').replace(/\/$/, '')
  const sessions = ctx.console.sessions
  const session = sessions.of(req)
  const tokenRequired = config.apiToken !== undefined && config.apiToken !== ''

  const asset = /^(assets|vendor)\/([A-Za-z0-9.-]+)$/.exec(path)
  if (asset && (method === 'GET' || method === 'HEAD')) {
    const file = (asset[1] === 'assets' ? assets : vendor)[asset[2] ?? '']
    if (!file) throw new HttpError(404, RequestCode.NotFound, `no file ${url.pathname}`)
    return serveFile(res, file(), asset[2] ?? '')
  }
  if (path === 'login') {
    if (method === 'GET') {
      if (!tokenRequired || session) return redirect(res, '/ui/observers')
      return sendHtml(res, 200, loginHtml())
    }
    if (method !== 'POST')
      throw new HttpError(405, RequestCode.MethodNotAllowed, `${method} is not allowed on /ui/login`)
    if (!tokenRequired) return redirect(res, '/ui/observers')
    const given = (await readForm(req)).get('token')?.trim() ?? ''
    if (!given || !tokenMatches(given, config.apiToken as string)) {
      ctx.log.warn({ path: '/ui/login' }, 'console sign-in with a wrong token')
      return sendHtml(res, 401, loginHtml('That token is not the one this worker was started with.'))
    }
    return redirect(res, '/ui/observers', { 'set-cookie': sessionCookieHeader(sessions.create()) })
  }
  if (path === 'logout') {
    if (method !== 'POST')
      throw new HttpError(405, RequestCode.MethodNotAllowed, `${method} is not allowed on /ui/logout`)
    if (session) {
      if (!csrfValid(req, session))
        throw new HttpError(403, RequestCode.Forbidden, 'missing or invalid x-observers-csrf header')
      sessions.end(session.id)
    }
    return redirect(res, '/ui/login', { 'set-cookie': sessionCookieHeader(undefined) })
  }
  const key = path === '' ? 'observers' : path
  if (!(key in pages)) throw new HttpError(404, RequestCode.NotFound, `no page ${url.pathname}`)
  if (method !== 'GET' && method !== 'HEAD')
    throw new HttpError(405, RequestCode.MethodNotAllowed, `${method} is not allowed on ${url.pathname}`)
  if (tokenRequired && !session) return redirect(res, '/ui/login')
  return sendHtml(res, 200, pageHtml(key, session, tokenRequired))
}
