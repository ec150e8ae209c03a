// Browser tests against the real stack: `npm run build` first, then `npm run test:e2e`.
// The demo model echoes the last user message, one word-sized token every DELAY_MS, so an answer takes
// several seconds and its exact text is known. The raw answer is read from the page's debug hook
// (`window.__chatrelay.snapshot()`, the same data as localStorage), never from rendered HTML.
import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { chromium } from 'playwright-core'
import { demoRequests, FRONTEND, startStack } from './stack.mjs'

const DELAY_MS = 60
const MODEL = `chatrelay-demo?echo=1&delay_ms=${DELAY_MS}`
const ARTIFACTS = join(FRONTEND, 'e2e', 'artifacts')
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** @typedef {import('playwright-core').Page} Page */
/** @typedef {import('playwright-core').BrowserContext} BrowserContext */
/** @typedef {import('../src/lib/types').ChatMessage} ChatMessage */
/** @typedef {import('../src/lib/types').Conversation} Conversation */
/**
 * The page's debug hook (src/main.ts); typed here by hand because the store's runes need the Svelte compiler.
 * @typedef {{ store: { currentId: string | null }, snapshot: () => Conversation[] }} Hook
 * @typedef {{ __chatrelay?: Hook }} Hooked
 */

/** @type {Awaited<ReturnType<typeof startStack>>} */
let stack
/** @type {import('playwright-core').Browser} */
let browser

/**
 * A message of `words` word-sized tokens with Markdown, newlines, quotes, backslashes and non-ASCII text,
 * so that an exact comparison means something.
 * @param {number} words
 */
function message(words) {
  const head =
    'Line one with **bold**, `code` and "quotes" \\ backslash\n- item one\n- item two\n\n'
  const tail = ' naïve café — 中文 العربية 🙂👩‍💻 end.'
  const body = Array.from({ length: words }, (_, i) => `w${i}`).join(' ')
  return head + body + tail
}

/** @param {BrowserContext} context */
async function openPage(context) {
  const page = await context.newPage()
  const streams = await watchEventSources(page)
  await recordStatuses(page)
  /** @type {string[]} */
  const problems = []
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`))
  page.on('dialog', (dialog) => {
    problems.push(`dialog: ${dialog.message()}`)
    void dialog.dismiss()
  })
  await page.goto(stack.url)
  await page.getByTestId('composer').waitFor()
  return { page, problems, streams }
}

/**
 * The current conversation's last answer, as the page holds it.
 * @param {Page} page
 * @returns {Promise<ChatMessage | null>}
 */
function answer(page) {
  return page.evaluate(() => {
    const hook = /** @type {Hooked} */ (/** @type {unknown} */ (window)).__chatrelay
    if (!hook) return null
    const current = hook.snapshot().find((c) => c.id === hook.store.currentId)
    return current?.messages.findLast((m) => m.role === 'assistant') ?? null
  })
}

/**
 * Waits until the current answer satisfies a condition on its status and text length.
 * @param {Page} page
 * @param {{ minChars?: number, settled?: boolean, timeout?: number }} want
 */
async function waitForAnswer(page, { minChars = 0, settled = false, timeout = 30_000 }) {
  await page.waitForFunction(
    ({ minChars, settled }) => {
      const hook = /** @type {Hooked} */ (/** @type {unknown} */ (window)).__chatrelay
      const current = hook?.snapshot().find((c) => c.id === hook.store.currentId)
      const m = current?.messages.findLast((x) => x.role === 'assistant')
      if (!m) return false
      if (settled) return m.status !== 'streaming'
      return m.status === 'streaming' && m.content.length >= minChars && Boolean(m.streamId)
    },
    { minChars, settled },
    { timeout, polling: 50 },
  )
  const found = await answer(page)
  assert.ok(found, 'no answer on the page')
  return found
}

/** @param {Page} page @param {string} text */
async function send(page, text) {
  await page.getByTestId('composer').fill(text)
  await page.getByTestId('composer').press('Enter')
  await page.getByTestId('stop').waitFor()
}

/**
 * The demo model's record of what it sent for a stream, once `ready` holds for it.
 * @param {string} streamId
 * @param {(r: Awaited<ReturnType<typeof demoRequests>>[number]) => boolean} ready
 */
async function upstream(streamId, ready = (r) => r.finished || r.client_disconnected) {
  const deadline = Date.now() + 30_000
  for (;;) {
    const records = (await demoRequests(stack.demoUrl)).filter((r) => r.stream_id === streamId)
    if (records.length > 0 && records.every(ready)) return records
    if (Date.now() > deadline) {
      assert.fail(`upstream records for ${streamId} never got ready: ${JSON.stringify(records)}`)
    }
    await new Promise((ok) => setTimeout(ok, 100))
  }
}

/**
 * Counts the page's open EventSource connections (made and neither closed by the page nor given up by the
 * browser) and keeps the most at once over every document the page loads: the page must hold at most one
 * connection per answer in flight. Counted in the page because the network events Playwright reports for
 * a closed connection and the next one can arrive out of order.
 * @param {Page} page
 */
async function watchEventSources(page) {
  let most = 0
  await page.exposeFunction('__e2eEventSources', (/** @type {number} */ open) => {
    most = Math.max(most, open)
  })
  await page.addInitScript(() => {
    const report = /** @type {{ __e2eEventSources: (open: number) => void }} */ (
      /** @type {unknown} */ (window)
    ).__e2eEventSources
    const Native = window.EventSource
    let open = 0
    class CountedEventSource extends Native {
      #counted = true
      /** @param {string | URL} url @param {EventSourceInit} [init] */
      constructor(url, init) {
        super(url, init)
        void report(++open)
        this.addEventListener('error', () => {
          if (this.readyState === Native.CLOSED) this.#uncount()
        })
      }
      close() {
        super.close()
        this.#uncount()
      }
      #uncount() {
        if (!this.#counted) return
        this.#counted = false
        void report(--open)
      }
    }
    window.EventSource = CountedEventSource
  })
  return { most: () => most }
}

/**
 * Keeps every connection status the page shows, in order, since its document loaded
 * (`window.__e2eStatuses`): a status that shows only briefly is still seen, however late the test looks.
 * @param {Page} page
 */
async function recordStatuses(page) {
  await page.addInitScript(() => {
    /** @type {string[]} */
    const seen = []
    const hooked = /** @type {{ __e2eStatuses?: string[] }} */ (/** @type {unknown} */ (window))
    hooked.__e2eStatuses = seen
    const note = () => {
      const text = document.querySelector('[data-testid=connection-status]')?.textContent?.trim()
      if (text && seen.at(-1) !== text) seen.push(text)
    }
    new MutationObserver(note).observe(document, {
      subtree: true,
      childList: true,
      characterData: true,
    })
  })
}

/**
 * Waits until the page has shown `status` since its document loaded.
 * @param {Page} page
 * @param {string} status
 */
async function waitForStatusShown(page, status) {
  await page.waitForFunction(
    (status) =>
      /** @type {{ __e2eStatuses?: string[] }} */ (
        /** @type {unknown} */ (window)
      ).__e2eStatuses?.includes(status) ?? false,
    status,
    { timeout: 30_000, polling: 50 },
  )
}

/**
 * The answer as the server stored it: every event from the start (the stream has ended, so the response
 * does too), reassembled by the protocol's rule (the `delta` texts after the last `reset`). Read through
 * the page's context, so it carries the page's session cookie.
 * @param {Page} page
 * @param {string} streamId
 */
async function storedAnswer(page, streamId) {
  const response = await page.request.get(`${stack.url}/api/streams/${streamId}/events`)
  assert.equal(response.status(), 200)
  let text = ''
  /** @type {string[]} */
  const types = []
  for (const block of (await response.text()).split('\n\n')) {
    const type = /^event: (.*)$/m.exec(block)?.[1]
    const data = /^data: (.*)$/m.exec(block)?.[1]
    if (!type || data === undefined) continue
    types.push(type)
    if (type === 'reset') text = ''
    if (type === 'delta') text += JSON.parse(data).text
  }
  return { text, types }
}

/** @param {Page} page @param {string} name */
async function screenshot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true })
}

/** @param {Page} page */
async function statusText(page) {
  return (await page.getByTestId('connection-status').textContent())?.trim()
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true })
  stack = await startStack({ model: MODEL })
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
})

after(async () => {
  await browser?.close()
  await stack?.stop()
})

// The bound is for the whole suite (about a minute on a quiet machine), with room for a loaded one.
describe('chatrelay in Chromium', { timeout: 300_000 }, () => {
  test('an answer survives three reloads and ends exactly as the model sent it', async () => {
    const context = await browser.newContext()
    try {
      const { page, problems, streams } = await openPage(context)
      // About 9 s of answer; the last reload comes before half of it, so a reload that a busy machine makes slow
      // still lands mid-answer.
      const text = message(120)
      await send(page, text)
      const { streamId } = await waitForAnswer(page, { minChars: 1 })
      for (const fraction of [0.15, 0.3, 0.45]) {
        await waitForAnswer(page, { minChars: Math.floor(text.length * fraction) })
        await page.reload()
        await page.getByTestId('composer').waitFor()
        const resumed = await answer(page)
        assert.equal(resumed?.streamId, streamId, 'the reloaded page follows the same stream')
        assert.ok(text.startsWith(resumed?.content ?? '!'), 'the restored text is a prefix')
      }
      await waitForStatusShown(page, 'resumed')
      const final = await waitForAnswer(page, { settled: true })
      assert.equal(final.status, 'done')
      assert.equal(final.content, text)
      const records = await upstream(String(streamId))
      assert.equal(records.length, 1, 'the model was asked once')
      assert.equal(records[0]?.sent_text, final.content)
      assert.equal((await storedAnswer(page, String(streamId))).text, final.content)
      assert.equal(streams.most(), 1, 'one SSE connection at a time')
      const last = page.getByTestId('message').last()
      assert.equal(await last.getAttribute('data-role'), 'assistant')
      assert.equal(await last.getAttribute('data-status'), 'done')
      assert.equal(await statusText(page), 'done')
      await screenshot(page, 'reloads')
      assert.deepEqual(problems, [])
    } finally {
      await context.close()
    }
  })

  test('Stop cancels the answer on the server and keeps the partial text', async () => {
    const context = await browser.newContext()
    try {
      const { page, problems } = await openPage(context)
      // Stopped at 120 characters of about 10 s of answer: the stop lands mid-answer however slow the click is.
      const text = message(150)
      await send(page, text)
      const { streamId } = await waitForAnswer(page, { minChars: 120 })
      const cancel = page.waitForRequest(
        (r) => r.method() === 'POST' && r.url() === `${stack.url}/api/streams/${streamId}/cancel`,
      )
      await page.getByTestId('stop').click()
      const cancelRequest = await cancel
      assert.equal(cancelRequest.headers()['content-type'], 'application/json')
      assert.equal((await cancelRequest.response())?.status(), 202)
      await page
        .locator('[data-testid=message][data-role=assistant][data-status=cancelled]')
        .waitFor()
      const final = await waitForAnswer(page, { settled: true })
      assert.equal(final.status, 'cancelled')
      assert.ok(final.content.length >= 120 && final.content.length < text.length)
      assert.ok(text.startsWith(final.content), 'the partial text is a prefix of the message')
      const [record] = await upstream(String(streamId), (r) => r.client_disconnected)
      assert.equal(record?.client_disconnected, true, 'the upstream request was closed')
      assert.equal(record?.finished, false)
      assert.ok(
        record?.sent_text.startsWith(final.content),
        'the partial text is a prefix of what was sent',
      )
      const stored = await storedAnswer(page, String(streamId))
      assert.equal(stored.text, final.content, 'the page kept exactly the text the server kept')
      assert.equal(stored.types.at(-1), 'cancelled')
      assert.equal(await statusText(page), 'done')
      await page.getByTestId('send').waitFor()

      await page.reload()
      const kept = await answer(page)
      assert.equal(kept?.status, 'cancelled')
      assert.equal(kept?.content, final.content)
      await screenshot(page, 'stop')
      assert.deepEqual(problems, [])
    } finally {
      await context.close()
    }
  })

  test('a second tab opened mid-answer shows the same final text', async () => {
    // In dark mode, to cover the other theme (the screenshot shows it).
    const context = await browser.newContext({ colorScheme: 'dark' })
    try {
      const first = await openPage(context)
      // About 10 s of answer: the second tab opens, joins and reloads while it is still being written, even when a
      // busy machine makes opening a page slow.
      const text = message(150)
      await send(first.page, text)
      const { streamId } = await waitForAnswer(first.page, { minChars: 100 })
      const second = await openPage(context)
      const joined = await waitForAnswer(second.page, { minChars: 1 })
      assert.equal(joined.streamId, streamId)
      await waitForAnswer(second.page, { minChars: Math.floor(text.length / 3) })
      await second.page.reload()
      const [a, b] = await Promise.all([
        waitForAnswer(first.page, { settled: true }),
        waitForAnswer(second.page, { settled: true }),
      ])
      assert.equal(a.content, text)
      assert.equal(b.content, text)
      const [record] = await upstream(String(streamId))
      assert.equal(record?.sent_text, text)
      assert.equal(first.streams.most(), 1, 'one SSE connection at a time in the first tab')
      assert.equal(second.streams.most(), 1, 'one SSE connection at a time in the second tab')
      const rendered = await Promise.all(
        [first.page, second.page].map((p) => p.getByTestId('message').last().innerText()),
      )
      assert.equal(rendered[0], rendered[1])
      const background = await second.page.evaluate(
        () => getComputedStyle(document.documentElement).backgroundColor,
      )
      assert.equal(background, 'rgb(17, 20, 24)', 'the dark theme follows the system')
      await screenshot(second.page, 'second-tab')
      assert.deepEqual([...first.problems, ...second.problems], [])
    } finally {
      await context.close()
    }
  })

  test('a few seconds offline mid-answer, then the answer completes exactly', async () => {
    const context = await browser.newContext()
    try {
      const { page, problems, streams } = await openPage(context)
      const text = message(110)
      await send(page, text)
      const { streamId } = await waitForAnswer(page, { minChars: 80 })
      await context.setOffline(true)
      await waitForStatusShown(page, 'reconnecting')
      // The outage itself: its length is the scenario, not a guess at how long something else takes.
      await new Promise((ok) => setTimeout(ok, 3_000))
      const during = await answer(page)
      assert.equal(during?.status, 'streaming')
      await context.setOffline(false)
      const final = await waitForAnswer(page, { settled: true })
      assert.equal(final.status, 'done')
      assert.equal(final.content, text)
      const [record] = await upstream(String(streamId))
      assert.equal(record?.sent_text, text)
      assert.equal(streams.most(), 1, 'one SSE connection at a time')
      await screenshot(page, 'offline')
      assert.deepEqual(problems, [])
    } finally {
      await context.close()
    }
  })

  test('HTML in a model reply runs nothing', async () => {
    const context = await browser.newContext()
    try {
      const { page, problems } = await openPage(context)
      const text =
        'Look: <img src=x onerror="window.__pwned=1;alert(1)"> and ' +
        '<script>window.__pwned=1;alert(2)</script> and <a href="javascript:window.__pwned=1">x</a> ' +
        'but **this stays bold**.'
      await send(page, text)
      const final = await waitForAnswer(page, { settled: true })
      assert.equal(final.content, text)
      const [record] = await upstream(String(final.streamId))
      assert.equal(record?.sent_text, final.content)
      await page.reload()
      await page.getByTestId('message').last().waitFor()
      await page
        .locator('[data-testid=message][data-role=assistant] a')
        .click({ noWaitAfter: true })
      await new Promise((ok) => setTimeout(ok, 500))
      const assistant = page.locator('[data-testid=message][data-role=assistant]').last()
      assert.equal(await assistant.locator('img, script').count(), 0)
      assert.equal(await assistant.locator('strong').innerText(), 'this stays bold')
      assert.equal(await page.evaluate(() => /** @type {any} */ (window).__pwned), undefined)
      const user = page.locator('[data-testid=message][data-role=user]').last()
      assert.equal(await user.textContent(), text, 'the question is shown as plain text')
      await screenshot(page, 'xss')
      await page.setViewportSize({ width: 375, height: 740 })
      await page.getByRole('navigation', { name: 'Conversations' }).waitFor({ state: 'hidden' })
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth)
      assert.ok(overflow <= 0, `the page scrolls sideways at a phone's width by ${overflow} px`)
      await screenshot(page, 'xss-phone')
      assert.deepEqual(problems, [])
    } finally {
      await context.close()
    }
  })
})
