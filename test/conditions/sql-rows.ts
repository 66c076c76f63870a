import fc from 'fast-check'
import type { ChangeEvent, EventKind } from '../../src/event/event.ts'
import { changeEvent } from './helpers.ts'

/**
 * Digits as Postgres might send them. Clusters of values that doubles conflate (2^53 vs 2^53+1,
 * 12.5 vs 12.5000000000000000001) make exact comparison matter in many generated cases.
 */
export const numberText: fc.Arbitrary<string> = fc.oneof(
  fc.integer({ min: -3, max: 3 }).map(String),
  {
    arbitrary: fc.constantFrom(
      '9007199254740992',
      '9007199254740993',
      '9007199254740993.0',
      '-9007199254740993',
    ),
    weight: 2,
  },
  {
    arbitrary: fc.constantFrom(
      '12.5',
      '12.50',
      '12.5000000000',
      '12.5000000000000000001',
      '12.4999999999999999999',
    ),
    weight: 2,
  },
  fc.constantFrom('0', '-0', '0.0', '0.1', '0.10', '1e2', '100', '1.5E-3', '0.0015', '1.25E1', '1e16'),
  {
    arbitrary: fc
      .tuple(fc.integer({ min: -99, max: 99 }), fc.integer({ min: 0, max: 99 }), fc.nat(3))
      .map(([int, frac, zeros]) => `${int}.${frac}${'0'.repeat(zeros)}`),
    weight: 1,
  },
)

/** Short strings over a small alphabet, so orderings often hinge on case, accents or U+FFFF vs astral. */
export const text: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(fc.constantFrom('😀', '\uffff', '\ue000'), fc.constantFrom('a', 'B', 'é', "'", '"', '\\', ' ')),
    {
      maxLength: 2,
    },
  )
  .map((parts) => parts.join(''))

/** JSON text of a value, JSON null, or undefined for an absent key. */
function maybe(arb: fc.Arbitrary<string>): fc.Arbitrary<string | undefined> {
  return fc.option(fc.option(arb, { nil: 'null', freq: 8 }), { nil: undefined, freq: 6 })
}

function objectJson(fields: Record<string, string | undefined>): string {
  const members = Object.entries(fields).filter(([, v]) => v !== undefined)
  return `{${members.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`
}

const stringJson = text.map((s) => JSON.stringify(s))

/** Each key has one JSON type (or is null/absent), so generated orderings never mix types. */
const rowFields = fc.record({
  n1: maybe(numberText),
  n2: maybe(numberText),
  s1: maybe(stringJson),
  s2: maybe(stringJson),
  status: maybe(fc.constantFrom('"new"', '"paid"', '"shipped"')),
  b1: maybe(fc.boolean().map(String)),
  o: maybe(fc.record({ k: maybe(numberText), t: maybe(stringJson) }).map(objectJson)),
  a: maybe(fc.array(numberText, { maxLength: 3 }).map((items) => `[${items.join(',')}]`)),
})

export const rowKeys = ['n1', 'n2', 's1', 's2', 'status', 'b1', 'o', 'a'] as const

/** The event as JSON texts (what Postgres receives) and as parsed by the pipeline (what conditions see). */
export interface EventCase {
  readonly kind: EventKind
  readonly before: string | null
  readonly after: string | null
  readonly changed: string[]
  readonly event: ChangeEvent
}

export const eventCase: fc.Arbitrary<EventCase> = fc
  .record({
    kind: fc.constantFrom<EventKind>('INSERT', 'UPDATE', 'DELETE'),
    before: rowFields,
    replacement: rowFields,
    replaced: fc.subarray([...rowKeys]),
    listed: fc.subarray([...rowKeys]),
  })
  .map(({ kind, before, replacement, replaced, listed }) => {
    // An UPDATE's after image re-draws a few keys of its before image, so most columns stay equal.
    const after = { ...before, ...Object.fromEntries(replaced.map((k) => [k, replacement[k]])) }
    const beforeJson = kind === 'INSERT' ? null : objectJson(before)
    const afterJson = kind === 'DELETE' ? null : objectJson(after)
    const changed = kind === 'UPDATE' ? listed : []
    const images = {
      ...(beforeJson === null ? {} : { before: beforeJson }),
      ...(afterJson === null ? {} : { after: afterJson }),
    }
    return {
      kind,
      before: beforeJson,
      after: afterJson,
      changed,
      event: changeEvent(kind, images, { changed }),
    }
  })
