// Browser tests of everything an answer can say (issue 12, test 7), against the real stack: `npm run build`
// first, then `npm run test:e2e`. The demo model plays an agent's turn (`scene=agent`): it reasons, echoes the
// question (Markdown) one word-sized token every DELAY_MS, then calls a tool. What the page holds is read from
// its debug hook (`window.__chatrelay.snapshot()`, the same data as localStorage) and compared with what the
// demo model recorded sending; what it renders is compared with that too.
import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { chromium } from 'playwright-core'
import { demoRequests, FRONTEND, startStack } from './stack.mjs'

const DELAY_MS = 60
const MODEL = `chatrelay-demo?scene=agent&echo=1&delay_ms=${DELAY_MS}`
const IMAGES_MODEL = `chatrelay-demo?scene=images&delay_ms=${DELAY_MS}`
const ARTIFACTS = join(FRONTEND, 'e2e', 'artifacts')
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
]
/** Generous: the machine may be busy with other suites. */
const WAIT_MS = 60_000

/** @typedef {import('playwright-core').Page} Page */
/** @typedef {import('../src/lib/types').ChatMessage} ChatMessage */
/** @typedef {import('../src/lib/types').Conversation} Conversation */
/** @typedef {import('./stack.mjs').DemoRecord} DemoRecord */
/**
 * @typedef {{ store: { currentId: string | null }, snapshot: () => Conversation[] }} Hook
 * @typedef {{ __chatrelay?: Hook, __e2eEventSources?: number, __e2eStatuses?: string[] }} Hooked
 */

/** @type {Awaited<ReturnType<typeof startStack>>} */
let stack
/** @type {import('playwright-core').Browser} */
let browser

/**
 * Counts the page's open EventSource connections (the most at once, over every document it loads) and keeps
 * every connection status it shows, however briefly.
 * @param {Page} page
 */
async function instrument(page) {
  let most = 0
  await page.exposeFunction('__e2eReportSources', (/** @type {number} */ open) => {
    most = Math.max(most, open)
  })
  await page.addInitScript(() => {
    const hooked = /** @type {Hooked & { __e2eReportSources: (n: number) => void }} */ (
      /** @type {unknown} */ (window)
    )
    const Native = window.EventSource
    let open = 0
    class CountedEventSource extends Native {
      #counted = true
      /** @param {string | URL} url @param {EventSourceInit} [init] */
      constructor(url, init) {
        super(url, init)
        void hooked.__e2eReportSources(++open)
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
        void hooked.__e2eReportSources(--open)
      }
    }
    window.EventSource = CountedEventSource
    /** @type {string[]} */
    const seen = []
    hooked.__e2eStatuses = seen
    new MutationObserver(() => {
      const text = document.querySelector('[data-testid=connection-status]')?.textContent?.trim()
      if (text && seen.at(-1) !== text) seen.push(text)
    }).observe(document, { subtree: true, childList: true, characterData: true })
  })
  return { most: () => most }
}

/** @param {import('playwright-core').BrowserContext} context */
async function openPage(context) {
  const page = await context.newPage()
  const sources = await instrument(page)
  /** @type {string[]} */
  const problems = []
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`))
  page.on('dialog', (dialog) => {
    problems.push(`dialog: ${dialog.message()}`)
    void dialog.dismiss()
  })
  await page.goto(stack.url)
  await page.getByTestId('composer').waitFor()
  return { page, problems, sources }
}

/**
 * The current conversation's last message of `role`, as the page holds it.
 * @param {Page} page
 * @param {'user' | 'assistant'} role
 * @returns {Promise<ChatMessage | null>}
 */
function lastMessage(page, role = 'assistant') {
  return page.evaluate((role) => {
    const hook = /** @type {Hooked} */ (/** @type {unknown} */ (window)).__chatrelay
    const current = hook?.snapshot().find((c) => c.id === hook.store.currentId)
    return current?.messages.findLast((m) => m.role === role) ?? null
  }, role)
}

/**
 * Waits until the current answer is settled, or streaming with at least the given characters of reasoning
 * and text, and returns it.
 * @param {Page} page
 * @param {{ reasoning?: number, content?: number, settled?: boolean }} want
 */
async function waitForAnswer(page, want) {
  await page.waitForFunction(
    (want) => {
      const hook = /** @type {Hooked} */ (/** @type {unknown} */ (window)).__chatrelay
      const current = hook?.snapshot().find((c) => c.id === hook.store.currentId)
      const m = current?.messages.findLast((x) => x.role === 'assistant')
      if (!m) return false
      if (want.settled) return m.status !== 'streaming'
      return (
        m.status === 'streaming' &&
        Boolean(m.streamId) &&
        (m.reasoning ?? '').length >= (want.reasoning ?? 0) &&
        m.content.length >= (want.content ?? 0)
      )
    },
    want,
    { timeout: WAIT_MS, polling: 50 },
  )
  const found = await lastMessage(page)
  assert.ok(found, 'no answer on the page')
  return found
}

/** @param {Page} page @param {string} status */
async function waitForStatusShown(page, status) {
  await page.waitForFunction(
    (status) =>
      /** @type {Hooked} */ (/** @type {unknown} */ (window)).__e2eStatuses?.includes(status) ??
      false,
    status,
    { timeout: WAIT_MS, polling: 50 },
  )
}

/**
 * The demo model's records of the requests for a stream, once they have all ended.
 * @param {string} streamId
 * @returns {Promise<DemoRecord[]>}
 */
async function upstream(streamId) {
  const deadline = Date.now() + WAIT_MS
  for (;;) {
    const records = (await demoRequests(stack.demoUrl)).filter((r) => r.stream_id === streamId)
    if (records.length > 0 && records.every((r) => r.finished)) return records
    if (Date.now() > deadline) assert.fail(`upstream records for ${streamId} never ended`)
    await new Promise((ok) => setTimeout(ok, 100))
  }
}

/** @param {Page} page @param {string} name */
async function screenshot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true })
}

/**
 * Sends a question. Its answer is the page's last one as soon as this returns (the page adds it on Enter),
 * so `waitForAnswer` waits for this answer, however quickly it ends.
 * @param {Page} page
 * @param {string} text
 */
async function send(page, text) {
  await page.getByTestId('composer').fill(text)
  await page.getByTestId('composer').press('Enter')
}

/**
 * An image drawn by the page's canvas, as the bytes of a file and the `data:` URL the page should send.
 * @param {Page} page
 * @param {'image/png' | 'image/jpeg'} type
 */
async function drawImage(page, type) {
  const url = await page.evaluate((type) => {
    const canvas = document.createElement('canvas')
    canvas.width = 96
    canvas.height = 64
    const g = canvas.getContext('2d')
    if (!g) throw new Error('no 2d context')
    const gradient = g.createLinearGradient(0, 0, 96, 64)
    gradient.addColorStop(0, '#2456c9')
    gradient.addColorStop(1, '#f5b700')
    g.fillStyle = gradient
    g.fillRect(0, 0, 96, 64)
    return canvas.toDataURL(type)
  }, type)
  const buffer = Buffer.from(url.slice(url.indexOf(',') + 1), 'base64')
  return { url, buffer }
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

// The bound is for the whole suite (under a minute on a quiet machine), with room for a loaded one.
describe('answers with reasoning, tool calls and images', { timeout: 300_000 }, () => {
  test('reasoning, a tool call and Markdown survive two reloads and render as the model sent them', async () => {
    const context = await browser.newContext()
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: stack.url })
    try {
      const { page, problems, sources } = await openPage(context)
      // About 130 tokens of text after the reasoning: 10 s of answer, so both reloads land mid-answer even when a
      // busy machine makes a reload slow.
      const words = Array.from({ length: 110 }, (_, i) => `w${i}`).join(' ')
      const text = `Checking **the weather**, \`code\` and "quotes" \\ naïve 🙂\n- item one\n- item two\n\n${words} end.`
      await send(page, text)
      const { streamId } = await waitForAnswer(page, { reasoning: 20 }) // mid-reasoning
      /** @type {ChatMessage[]} */
      const restored = []
      for (const want of [{ reasoning: 20 }, { content: Math.floor(text.length / 4) }]) {
        await waitForAnswer(page, want)
        await page.reload()
        await page.getByTestId('composer').waitFor()
        const resumed = await lastMessage(page)
        assert.ok(resumed)
        assert.equal(resumed.streamId, streamId, 'the reloaded page follows the same stream')
        restored.push(resumed)
      }
      await waitForStatusShown(page, 'resumed')
      const final = await waitForAnswer(page, { settled: true })
      const [record, ...others] = await upstream(String(streamId))
      assert.ok(record)
      assert.equal(others.length, 0, 'the model was asked once')

      // What the page holds is exactly what the model sent, of every kind.
      assert.equal(final.status, 'done')
      assert.equal(final.finishReason, 'tool_calls')
      assert.equal(final.reasoning, record.sent_reasoning)
      assert.equal(final.content, record.sent_text)
      assert.equal(final.content, text)
      assert.equal(record.sent_tool_calls.length, 1)
      assert.deepEqual(final.toolCalls, record.sent_tool_calls)
      assert.equal(final.refusal, undefined)
      for (const m of restored) {
        assert.ok(
          record.sent_reasoning.startsWith(m.reasoning ?? ''),
          'restored reasoning is a prefix',
        )
        assert.ok(text.startsWith(m.content), 'restored text is a prefix')
      }
      assert.equal(sources.most(), 1, 'one SSE connection at a time')

      // What it renders: the reasoning collapsed with its length, the tool card, the Markdown.
      const toggle = page.getByTestId('reasoning-toggle')
      assert.equal(await toggle.getAttribute('aria-expanded'), 'false')
      assert.match((await toggle.textContent()) ?? '', /Thought\s*\d+ characters/)
      await toggle.click()
      const reasoning = page.getByTestId('reasoning-text')
      await reasoning.waitFor({ timeout: WAIT_MS })
      assert.equal(await reasoning.textContent(), record.sent_reasoning)
      const [call] = record.sent_tool_calls
      assert.ok(call)
      const card = page.getByTestId('tool-call')
      assert.equal(await card.getByTestId('tool-name').textContent(), call.name)
      assert.equal(
        await card.getByTestId('tool-arguments').textContent(),
        JSON.stringify(JSON.parse(call.arguments), null, 2),
      )
      const rendered = page.locator('[data-testid=message][data-role=assistant]').last()
      assert.equal(await rendered.getAttribute('data-status'), 'done')
      assert.equal(await rendered.locator('strong').innerText(), 'the weather')
      assert.equal(await rendered.locator('code').innerText(), 'code')
      assert.equal(await rendered.locator('li').count(), 2)
      assert.ok((await rendered.innerText()).trimEnd().endsWith('w109 end.'))

      // Copy gives the Markdown source.
      await page.getByTestId('copy').click()
      await page.waitForFunction(
        async (text) => (await navigator.clipboard.readText()) === text,
        text,
        { timeout: WAIT_MS, polling: 100 },
      )
      await screenshot(page, 'kinds')
      assert.deepEqual(problems, [])
    } finally {
      await context.close()
    }
  })

  test('attached and pasted images reach the model, stay through a reload and show in a second tab; regenerate sends them again', async () => {
    const context = await browser.newContext()
    try {
      const first = await openPage(context)
      const { page } = first
      // This page's questions go to the demo model's scene that says what images it got. The page names no
      // model (the server's default is the agent above), so the test adds one to the request on its way.
      await page.route(`${stack.url}/api/streams`, async (route) => {
        const body = JSON.parse(route.request().postData() ?? '{}')
        await route.continue({ postData: JSON.stringify({ ...body, model: IMAGES_MODEL }) })
      })
      const png = await drawImage(page, 'image/png')
      const jpeg = await drawImage(page, 'image/jpeg')

      // Too big: refused with a reason, nothing attached.
      await page.getByTestId('attach').setInputFiles({
        name: 'huge.png',
        mimeType: 'image/png',
        buffer: Buffer.alloc(10_000_001),
      })
      await page.getByRole('alert').getByText('at most 10 MB').waitFor({ timeout: WAIT_MS })
      await page.getByRole('button', { name: 'Dismiss' }).click()

      await page
        .getByTestId('attach')
        .setInputFiles({ name: 'chart.png', mimeType: 'image/png', buffer: png.buffer })
      // Pasted as a browser pastes a copied image: a file in the paste event's clipboard data.
      await page.getByTestId('composer').evaluate((composer, url) => {
        const bytes = Uint8Array.from(atob(url.slice(url.indexOf(',') + 1)), (c) => c.charCodeAt(0))
        const data = new DataTransfer()
        data.items.add(new File([bytes], 'photo.jpg', { type: 'image/jpeg' }))
        composer.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true }))
      }, jpeg.url)
      const composing = page.locator('form [data-testid=thumbnail]')
      await composing.nth(1).waitFor({ timeout: WAIT_MS })
      assert.equal(await composing.count(), 2)

      const question = 'What is in these pictures?'
      await send(page, question)
      const answer = await waitForAnswer(page, { settled: true })
      assert.equal(answer.status, 'done')
      const [record] = await upstream(String(answer.streamId))
      assert.ok(record)
      assert.deepEqual(record.body.messages.at(-1), {
        role: 'user',
        content: [
          { type: 'text', text: question },
          { type: 'image_url', image_url: { url: png.url } },
          { type: 'image_url', image_url: { url: jpeg.url } },
        ],
      })
      assert.equal(answer.content, record.sent_text)
      assert.equal(answer.content, 'You sent me 2 images: image/png, image/jpeg.')

      /** @param {Page} p */
      const thumbnailsShown = (p) =>
        p.waitForFunction(
          () => {
            const images = [
              ...document.querySelectorAll('[aria-label=Conversation] img[data-testid=thumbnail]'),
            ]
            return (
              images.length === 2 &&
              images.every(
                (i) => i instanceof HTMLImageElement && i.complete && i.naturalWidth === 96,
              )
            )
          },
          null,
          { timeout: WAIT_MS, polling: 100 },
        )
      await thumbnailsShown(page)
      await page.reload()
      await thumbnailsShown(page)
      const second = await openPage(context)
      await thumbnailsShown(second.page)
      assert.deepEqual(
        (await lastMessage(second.page, 'user'))?.images?.map((i) => i.name),
        ['chart.png', 'photo.jpg'],
      )

      // Regenerate: a new stream for the same history, images included.
      await page.getByTestId('regenerate').click()
      await page.waitForFunction(
        (before) => {
          const hook = /** @type {Hooked} */ (/** @type {unknown} */ (window)).__chatrelay
          const current = hook?.snapshot().find((c) => c.id === hook.store.currentId)
          const m = current?.messages.findLast((x) => x.role === 'assistant')
          return Boolean(m?.streamId && m.streamId !== before && m.status !== 'streaming')
        },
        answer.streamId,
        { timeout: WAIT_MS, polling: 50 },
      )
      const again = await lastMessage(page)
      assert.ok(again)
      assert.equal(again.status, 'done')
      const [retold] = await upstream(String(again.streamId))
      assert.deepEqual(retold?.body.messages, record.body.messages)
      assert.equal(again.content, retold?.sent_text)
      await screenshot(page, 'images')
      assert.deepEqual([...first.problems, ...second.problems], [])
    } finally {
      await context.close()
    }
  })
})
