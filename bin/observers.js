#!/usr/bin/env node
// The package bin: runs the TypeScript CLI through tsx (Node >= 22.12).
import { register } from 'tsx/esm/api'

register()
await import('../src/cli/main.ts')
