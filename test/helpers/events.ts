import { createTestDatabase, type TestDatabase } from './db.ts'
import { type Receiver, startReceiver } from './receiver.ts'
import { observersDir } from './worker.ts'

/** A database with table `events (id, payload)`, a receiver, and observer `all` posting each INSERT to it. */
export interface EventsFixture {
  db: TestDatabase
  receiver: Receiver
  /** The observers directory to start workers with. */
  dir: string
  close(): Promise<void>
}

export async function eventsFixture(): Promise<EventsFixture> {
  const db = await createTestDatabase('create table events (id int primary key, payload text)')
  const receiver = await startReceiver()
  const dir = await observersDir({
    'all.json': {
      name: 'all',
      entity: 'events',
      events: ['INSERT'],
      actions: [{ type: 'webhook', url: receiver.url }],
    },
  })
  return {
    db,
    receiver,
    dir,
    async close() {
      await receiver.close()
      await db.drop()
    },
  }
}
