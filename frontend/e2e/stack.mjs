// Starts the whole chatrelay stack (`python -m cli dev`: Redis, demo model, worker, API serving dist/) on
// a free port for the browser tests, and stops it with its process group.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const FRONTEND = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const REPO = resolve(FRONTEND, '..')

/** @returns {Promise<number>} */
export function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer()
    server.unref()
    server.on('error', fail)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => ok(port))
    })
  })
}

function python() {
  if (process.env.CHATRELAY_PYTHON) return process.env.CHATRELAY_PYTHON
  const venv = join(REPO, '.venv', 'bin', 'python')
  return existsSync(venv) ? venv : 'python3'
}

/** The caller's environment minus anything that would point the stack at a real model or a shared Redis. */
function stackEnv() {
  /** @type {NodeJS.ProcessEnv} */
  const env = { ...process.env, PYTHONUNBUFFERED: '1' }
  for (const name of [
    'REDIS_URL',
    'OPENAI_API_KEY',
    'OPENAI_BASE_URL',
    'OPENAI_MODEL',
    'AZURE_OPENAI_ENDPOINT',
  ]) {
    delete env[name]
  }
  return env
}

/**
 * @typedef {{ url: string, demoUrl: string, output: () => string, stop: () => Promise<void> }} Stack
 * @param {{ model: string, timeoutMs?: number }} options
 * @returns {Promise<Stack>}
 */
export async function startStack({ model, timeoutMs = 60_000 }) {
  if (!existsSync(join(FRONTEND, 'dist', 'index.html'))) {
    throw new Error('frontend/dist is missing: run `npm run build` first')
  }
  const port = await freePort()
  const child = spawn(python(), ['-m', 'cli', 'dev', '--port', String(port), '--model', model], {
    cwd: REPO,
    detached: true, // its own process group, so stop() reaches Redis, the worker and the API too
    stdio: ['ignore', 'pipe', 'pipe'],
    env: stackEnv(),
  })
  let log = ''
  /** @type {Promise<number | null>} */
  const exited = new Promise((ok) => child.once('exit', (code) => ok(code)))

  const ready = new Promise((ok, fail) => {
    let url = ''
    let demoUrl = ''
    const timer = setTimeout(
      () => fail(new Error(`stack not ready after ${timeoutMs} ms:\n${log}`)),
      timeoutMs,
    )
    /** @param {Buffer} chunk */
    const read = (chunk) => {
      log += chunk.toString()
      url ||= /chatrelay ready: (http:\/\/\S+)/.exec(log)?.[1] ?? ''
      demoUrl ||= /demo upstream: (http:\/\/\S+)/.exec(log)?.[1] ?? ''
      if (url && demoUrl) {
        clearTimeout(timer)
        ok({ url: url.replace(/\/$/, ''), demoUrl: demoUrl.replace(/\/$/, '') })
      }
    }
    child.stdout.on('data', read)
    child.stderr.on('data', read)
    void exited.then((code) => {
      clearTimeout(timer)
      fail(new Error(`stack exited with ${code} before it was ready:\n${log}`))
    })
  })

  const stop = async () => {
    if (child.exitCode !== null || child.pid === undefined) return
    try {
      process.kill(-child.pid, 'SIGTERM')
    } catch {
      return
    }
    const killer = setTimeout(() => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }, 10_000)
    await exited
    clearTimeout(killer)
  }

  try {
    const { url, demoUrl } = /** @type {{ url: string, demoUrl: string }} */ (await ready)
    return { url, demoUrl, output: () => log, stop }
  } catch (error) {
    await stop()
    throw error
  }
}

/**
 * What the demo model received and sent, per request (`GET /_demo/requests`): the request body as received,
 * and what it said of each kind (tool calls by index).
 * @typedef {{ id: string, name: string, arguments: string }} SentToolCall
 * @typedef {{ stream_id: string | null, model: string, body: { messages: any[] } & Record<string, unknown>, sent_text: string, sent_reasoning: string, sent_refusal: string, sent_tool_calls: SentToolCall[], finished: boolean, client_disconnected: boolean }} DemoRecord
 * @param {string} demoUrl
 * @returns {Promise<DemoRecord[]>}
 */
export async function demoRequests(demoUrl) {
  const response = await fetch(`${demoUrl}/_demo/requests`)
  if (!response.ok) throw new Error(`demo upstream answered ${response.status}`)
  return await response.json()
}
