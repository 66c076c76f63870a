import { type Config, loadConfig } from '../../config/config.ts'
import { AppError, ErrorCode } from '../../errors/errors.ts'
import { createMysqlPool, type MysqlPool } from './connect.ts'

/** Where `observers watch --source` installs: a mysql:// URL, or the name of a configured mysql source. */
export function mysqlTarget(source: string, config: Config): { url: string; logTable: string } {
  if (/^(mysql|mariadb):\/\//i.test(source)) {
    const configured =
      config.sources.find((s) => s.kind === 'mysql' && s.url === source) ??
      // Not configured (yet): the table a source on this URL would read, MYSQL_SOURCE_TABLE included.
      loadConfig({ ...config.env, OBSERVERS_SOURCES: '', MYSQL_SOURCE_URL: source }).sources.find(
        (s) => s.name === 'mysql',
      )
    return { url: source, logTable: configured?.table ?? '' }
  }
  const named = config.sources.find((s) => s.name === source)
  if (named?.kind !== 'mysql' || !named.url) {
    throw new AppError(
      ErrorCode.InvalidConfig,
      `"${source}" is neither a mysql:// URL nor a configured mysql source (see OBSERVERS_SOURCES, MYSQL_SOURCE_URL)`,
    )
  }
  return { url: named.url, logTable: named.table }
}

export async function withMysqlPool<T>(url: string, fn: (pool: MysqlPool) => Promise<T>): Promise<T> {
  const pool = createMysqlPool(url)
  try {
    return await fn(pool)
  } finally {
    await pool.end()
  }
}
