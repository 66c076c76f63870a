import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadConfig } from '../../src/config/config.ts'
import { registerSecretValues, scrubSecrets } from '../../src/log/log.ts'
import { secretValues } from '../../src/ops/secrets.ts'

const basic = (user: string, password: string) => Buffer.from(`${user}:${password}`).toString('base64')

test('the wire forms of secrets are scrubbed: Basic credentials and percent-encoded spellings', () => {
  const config = loadConfig({
    DATABASE_URL: 'postgres://root@127.0.0.1:5432/test',
    SEARCH_URL: 'https://elastic:s3arch%2Fpass@search.example:9200',
    TWILIO_ACCOUNT_SID: 'AC0123456789abcdef0123456789abcdef',
    TWILIO_AUTH_TOKEN: 'twilio-auth-token-42',
    SMTP_URL: 'smtp://mailer:p%40ss:word99@smtp.example',
  })
  registerSecretValues(secretValues(config, []))
  const echoed = [
    `Basic ${basic('elastic', 's3arch/pass')}`,
    `Basic ${basic('AC0123456789abcdef0123456789abcdef', 'twilio-auth-token-42')}`,
    `token=${encodeURIComponent('p@ss:word99')}`,
    'password s3arch/pass',
  ]
  for (const text of echoed) {
    const scrubbed = scrubSecrets(`the server said: ${text}`)
    assert.match(scrubbed, /\[redacted\]/, text)
    assert.ok(!scrubbed.includes(text.split(/[ =]/)[1] ?? text), `${text} survived: ${scrubbed}`)
  }
})

test('SEARCH_USERNAME and SEARCH_PASSWORD are scrubbed as Basic credentials too', () => {
  const config = loadConfig({
    DATABASE_URL: 'postgres://root@127.0.0.1:5432/test',
    SEARCH_URL: 'https://search.example:9200',
    SEARCH_USERNAME: 'indexer',
    SEARCH_PASSWORD: 'search-password-9',
  })
  registerSecretValues(secretValues(config, []))
  const header = `Basic ${basic('indexer', 'search-password-9')}`
  assert.equal(scrubSecrets(`echo: ${header}`), 'echo: Basic [redacted]')
  assert.equal(scrubSecrets('echo: search-password-9'), 'echo: [redacted]')
})
