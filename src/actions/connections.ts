import { drainNatsConnections } from './nats-connections.ts'
import { closeRedisClients } from './redis-clients.ts'
import { closeSmtpTransports } from './smtp.ts'

/**
 * Closes the long-lived connections actions keep open (Redis clients, NATS connections, SMTP
 * pools), after the last in-flight action has finished: the worker calls this on stop.
 */
export async function closeConnections(): Promise<void> {
  closeSmtpTransports()
  await Promise.all([closeRedisClients(), drainNatsConnections()])
}
