/**
 * Preloaded into every process of a test run (test/run.ts puts it in NODE_OPTIONS): the test
 * files and the CLIs they spawn. Node strips the types of each .ts file anew in every process,
 * a third of a CLI's start-up CPU; this keeps each stripped file under .data/strip-cache, keyed by
 * its content, so a run strips each file once. The output is Node's own (`stripTypeScriptTypes`,
 * which keeps every position, so stack traces still point at the source).
 * Plain JavaScript, so that loading it does not itself start the type stripper.
 */
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import module from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const dir = path.resolve(import.meta.dirname, '../.data/strip-cache')

// A spawned process on an older Node (the Procfile tests run the system's) has no such hooks.
if (module.registerHooks && module.stripTypeScriptTypes) {
  mkdirSync(dir, { recursive: true })
  module.registerHooks({
    load(url, context, nextLoad) {
      // Node refuses to strip types under node_modules: so does this.
      if (!url.startsWith('file:') || !url.endsWith('.ts') || url.includes('/node_modules/')) {
        return nextLoad(url, context)
      }
      const source = readFileSync(fileURLToPath(url), 'utf8')
      const cached = path.join(dir, `${createHash('sha1').update(source).digest('hex')}.js`)
      let stripped
      try {
        stripped = readFileSync(cached, 'utf8')
      } catch {
        // Its first call warns that it is experimental: output a test may assert is clean.
        const emitWarning = process.emitWarning
        process.emitWarning = () => {}
        try {
          stripped = module.stripTypeScriptTypes(source)
        } finally {
          process.emitWarning = emitWarning
        }
        // Renamed into place, so a file running beside this one never reads half a file.
        const partial = `${cached}.${process.pid}`
        writeFileSync(partial, stripped)
        renameSync(partial, cached)
      }
      return { format: 'module', source: stripped, shortCircuit: true }
    },
  })
}
