import uPlot from '/ui/vendor/uPlot.esm.js'
import { announce, api, el } from './api.js'

const page = document.getElementById('page')
const css = el('link', { rel: 'stylesheet', href: '/ui/vendor/uPlot.min.css' })
document.head.append(css)
const summary = el('p', { id: 'backlog-now', role: 'status' })
const chartBox = el('figure', { id: 'backlog-chart', 'aria-describedby': 'backlog-now' })
const caption = el('figcaption', {
  text: 'Undispatched changes (left axis) and the age of the oldest, in seconds (right axis), over the last hour, cluster-wide: one sample every 15 s, written by whichever worker takes it first and kept in the database.',
})
chartBox.append(caption)
page.append(summary, chartBox)

let plot
function size() {
  return { width: Math.max(280, Math.min(page.clientWidth, 1100)), height: 320 }
}

async function refresh() {
  try {
    const { samples, interval_seconds } = await api('/api/backlog')
    const data = [
      samples.map((s) => Date.parse(s.at) / 1000),
      samples.map((s) => s.backlog),
      samples.map((s) => s.oldest_seconds),
    ]
    const last = samples.at(-1)
    summary.textContent = last
      ? `Now: ${last.backlog} change(s) waiting, oldest ${last.oldest_seconds} s. One sample every ${interval_seconds} s.`
      : 'No sample yet.'
    if (!plot) {
      plot = new uPlot(
        {
          ...size(),
          scales: { x: { time: true, auto: false } },
          series: [
            {},
            { label: 'backlog', stroke: '#1f6feb', width: 2, scale: 'n' },
            { label: 'oldest (s)', stroke: '#d1242f', width: 2, scale: 's' },
          ],
          axes: [
            {},
            { scale: 'n', label: 'changes' },
            { scale: 's', side: 1, label: 'seconds', grid: { show: false } },
          ],
        },
        data,
        chartBox,
      )
    } else plot.setData(data, false)
    // Always the last hour, however few samples there are yet.
    const now = Date.now() / 1000
    plot.setScale('x', { min: now - 3600, max: now })
  } catch (err) {
    announce(err.message, 'error')
  }
}

addEventListener('resize', () => plot?.setSize(size()))
await refresh()
setInterval(refresh, 15_000)
