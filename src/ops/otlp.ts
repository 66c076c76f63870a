import { readFileSync } from 'node:fs'
import { type Logger, maskUrlCredentials } from '../log/log.ts'
import { createTracing, type Tracing } from './tracing.ts'

const version: string = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
).version

/** Where spans go: the traces endpoint as given, or `/v1/traces` under the general one (the OTLP spec). */
export function tracesEndpoint(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim()
  if (traces) return traces
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim()
  if (!base) return undefined
  return `${base.replace(/\/+$/, '')}/v1/traces`
}

/**
 * The OpenTelemetry SDK with an OTLP/HTTP (JSON) exporter when an endpoint is configured, else
 * undefined. The SDK is imported here, on demand, so a worker that exports nothing never loads it.
 */
export async function startTracing(
  env: Readonly<Record<string, string | undefined>>,
  log: Logger,
): Promise<Tracing | undefined> {
  const url = tracesEndpoint(env)
  if (!url || env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined
  const [sdk, { OTLPTraceExporter }, { resourceFromAttributes }, semconv] = await Promise.all([
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/semantic-conventions'),
  ])
  const provider = new sdk.BasicTracerProvider({
    resource: resourceFromAttributes({
      [semconv.ATTR_SERVICE_NAME]: env.OTEL_SERVICE_NAME?.trim() || 'pg-observers',
      [semconv.ATTR_SERVICE_VERSION]: version,
    }),
    spanProcessors: [new sdk.BatchSpanProcessor(new OTLPTraceExporter({ url }))],
  })
  const shown = maskUrlCredentials(url)
  log.info({ endpoint: shown }, `OpenTelemetry traces exported to ${shown}`)
  return createTracing(provider.getTracer('pg-observers', version), () => provider.shutdown())
}
