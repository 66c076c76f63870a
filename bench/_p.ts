import { readFile } from 'node:fs/promises'
import { renderProfile, summarizeProfile } from './profile.ts'
for (const f of process.argv.slice(2)) console.log(renderProfile(summarizeProfile(f, JSON.parse(await readFile(f, 'utf8')))))
