// 5. In Chromium, the minimal page of examples/ai-sdk-svelte (the AI SDK's Svelte `Chat` and the stock transport),
// built here: reloaded twice mid-answer, it shows the exact final text, once.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'

import { chromium } from 'playwright-core'

import { API, demoModel, records, until, upstream } from './lib.mjs'

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const EXAMPLE = join(REPO, 'examples', 'ai-sdk-svelte')
const VITE = join(EXAMPLE, 'node_modules', '.bin', 'vite')
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking']
// 200 tokens, 50 ms apart (10 s): both reloads land mid-answer even on a busy machine (checked below).
const MODEL = demoModel({ tokens: '200', delay_ms: '50', seed: '5' })

let out
let preview
let browser
let site

function run(command, args, env = {}) {
  const child = spawn(command, args, { cwd: EXAMPLE, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  child.stdout.on('data', (chunk) => (log += chunk))
  child.stderr.on('data', (chunk) => (log += chunk))
  const exited = new Promise((ok) => child.once('exit', (code) => ok(code)))
  return { child, exited, log: () => log }
}

before(async () => {
  out = mkdtempSync(join(tmpdir(), 'chatrelay-ai-sdk-svelte-'))
  const build = run(VITE, ['build', '--outDir', out, '--emptyOutDir', '--logLevel', 'warn'])
  assert.equal(await build.exited, 0, `vite build failed:\n${build.log()}`)
  // `vite preview` serves the build and passes /api on to chatrelay (the example's vite.config.js).
  const { freePort } = await import('./ports.mjs')
  const port = await freePort()
  preview = run(VITE, ['preview', '--outDir', out, '--host', '127.0.0.1', '--port', String(port), '--strictPort'], {
    CHATRELAY_API: API,
  })
  site = `http://127.0.0.1:${port}`
  await until(async () => (await fetch(site).catch(() => null))?.ok, `vite preview on ${site}:\n${preview.log()}`)
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
})

after(async () => {
  await browser?.close()
  preview?.child.kill()
  await preview?.exited
  if (out) rmSync(out, { recursive: true, force: true })
})

test('a page on @ai-sdk/svelte reloads twice mid-answer and shows the exact final text', async () => {
  const context = await browser.newContext()
  const page = await context.newPage()
  const streamIds = []
  page.on('response', (response) => {
    const id = response.headers()['x-chatrelay-stream-id']
    if (id && !streamIds.includes(id)) streamIds.push(id)
  })
  const answer = () =>
    page.evaluate(() =>
      [...document.querySelectorAll('[data-role="assistant"] .text')].map((p) => p.textContent).join(''),
    )
  await page.goto(`${site}/?model=${encodeURIComponent(MODEL)}`)
  await page.getByTestId('composer').fill('Tell me a long story')
  await page.getByTestId('send').click()

  let shown = 0
  for (const reload of [1, 2]) {
    const before = shown
    shown = await until(async () => {
      const length = (await answer()).length
      return length > before ? length : 0
    }, `more of the answer before reload ${reload}`)
    const record = (await records(streamIds[0])).at(-1)
    assert.ok(!record.finished, `reload ${reload} came after the end: make the answer longer for this machine`)
    await page.reload()
  }
  await until(
    async () => (await page.locator('[data-role="assistant"]').last().getAttribute('data-finish')) === 'stop',
    'the answer to end',
  )
  const record = await upstream(streamIds[0])
  assert.deepEqual(streamIds, [streamIds[0]], 'one answer, resumed; never a second one')
  assert.equal(await page.locator('[data-role="assistant"]').count(), 1)
  assert.equal(await answer(), record.sent_text)
  const artifacts = join(REPO, 'test-artifacts')
  mkdirSync(artifacts, { recursive: true })
  await page.screenshot({ path: join(artifacts, 'ai-sdk-svelte.png'), fullPage: true })
  await context.close()
})
