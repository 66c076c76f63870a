/**
 * A provider's JSON reply as an object, or `{}` when it is not one. Never throws: a reply we
 * cannot read must not turn a delivered message into a retry (and so a duplicate).
 */
export function parseReply<T extends object>(body: string): Partial<T> {
  try {
    const parsed = JSON.parse(body) as unknown
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Partial<T>) : {}
  } catch {
    return {}
  }
}
