#!/usr/bin/env node
// The package bin: runs the TypeScript CLI on Node >= 22.18, whose own type stripping needs no
// compiler at start-up. Node refuses to strip types under node_modules, so an installed copy of
// the package runs through tsx instead. On an older Node it runs itself again on the Node 22 the
// project installs as a dev dependency.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)

if (major > 22 || (major === 22 && minor >= 18)) {
  if (
    fileURLToPath(import.meta.url)
      .split(path.sep)
      .includes('node_modules')
  ) {
    const { register } = await import('tsx/esm/api')
    register()
  }
  await import('../src/cli/main.ts')
} else {
  // import.meta.filename is newer than some of the Node versions this branch runs on.
  const self = fileURLToPath(import.meta.url)
  const bundled = path.resolve(path.dirname(self), '../node_modules/node/bin/node')
  if (!existsSync(bundled)) {
    console.error(
      `OB001: pg-observers needs Node.js >= 22.18 (this is ${process.version}); install it, or run \`npm install\` in the project to get its own Node 22`,
    )
    process.exit(2)
  }
  const child = spawn(bundled, [...process.execArgv, self, ...process.argv.slice(2)], {
    stdio: 'inherit',
  })
  // This process stands between the caller and the CLI: every signal that stops or reloads the
  // worker is passed on (Ctrl-C reaches both; the worker acts on the first SIGINT only).
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => child.kill(signal))
  }
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal)
      process.kill(process.pid, signal)
    }
    process.exit(code ?? 1)
  })
}
