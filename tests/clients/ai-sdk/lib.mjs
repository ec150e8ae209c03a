// What the AI SDK client tests share: the stack's addresses (from tests/test_ai_sdk_clients.py), a chat state for
// Node (AbstractChat needs one; the framework packages hold theirs in React/Svelte/Vue state), a transport that
// records every chunk the SDK parsed, and the demo upstream's record of what it sent.
import assert from 'node:assert/strict'

import * as ai5 from 'ai5'
import * as ai6 from 'ai6'

export const SDKS = { 'ai 5.0.0': ai5, 'ai 6.0.326': ai6 }

function env(name) {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set: run these through tests/test_ai_sdk_clients.py`)
  return value
}

export const API = env('CHATRELAY_API_A')
export const API_B = env('CHATRELAY_API_B')
export const DEMO = env('CHATRELAY_DEMO_URL')
export const AUTH = { Authorization: `Bearer ${env('CHATRELAY_API_KEY')}` }
export const ADMIN = { Authorization: `Bearer ${env('CHATRELAY_ADMIN_KEY')}` }

let counter = 0
/** A chat id and a model name no other test uses (the model name also finds the upstream's record). */
export function unique(prefix) {
  counter += 1
  return `${prefix}-${process.pid}-${Date.now()}-${counter}`
}

/** The state `AbstractChat` reads and writes (`ChatState` in ai's `chat.ts`). */
class State {
  status = 'ready'
  error = undefined
  messages
  constructor(messages = []) {
    this.messages = messages
  }
  pushMessage = (message) => {
    this.messages = [...this.messages, message]
  }
  popMessage = () => {
    this.messages = this.messages.slice(0, -1)
  }
  replaceMessage = (index, message) => {
    this.messages = [...this.messages.slice(0, index), message, ...this.messages.slice(index + 1)]
  }
  snapshot = (value) => structuredClone(value)
}

/**
 * A chat of one SDK version against chatrelay, with a transport that keeps the chunks it parsed and the stream
 * id of each response (`x-chatrelay-stream-id`).
 * @param {typeof ai6} sdk
 */
export function makeChat(sdk, { id, messages = [], body = {}, headers = AUTH, api = API, ...options }) {
  const seen = { chunks: [], streamIds: [], statuses: [] }
  class RecordingTransport extends sdk.DefaultChatTransport {
    processResponseStream(stream) {
      return super.processResponseStream(stream).pipeThrough(
        new TransformStream({
          transform(chunk, controller) {
            seen.chunks.push(chunk)
            controller.enqueue(chunk)
          },
        }),
      )
    }
  }
  const transport = new RecordingTransport({
    api: `${api}/api/chat`,
    headers,
    body,
    fetch: async (url, init) => {
      const response = await fetch(url, init)
      seen.statuses.push(response.status)
      const streamId = response.headers.get('x-chatrelay-stream-id')
      if (streamId) seen.streamIds.push(streamId)
      return response
    },
  })
  class NodeChat extends sdk.AbstractChat {
    constructor() {
      super({ id, transport, state: new State(structuredClone(messages)), ...options })
    }
  }
  const chat = new NodeChat()
  chat.seen = seen
  return chat
}

export function textOf(message, type = 'text') {
  return (message?.parts ?? [])
    .filter((p) => p.type === type)
    .map((p) => p.text)
    .join('')
}

export const assistants = (chat) => chat.messages.filter((m) => m.role === 'assistant')

/** Wait for `condition()` to be truthy, checking every 20 ms; fail after `timeoutMs` (a bound, not a pace). */
export async function until(condition, what, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await condition()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** The demo upstream's records of the requests for one stream, oldest first. */
export async function records(streamId) {
  const response = await fetch(`${DEMO}/_demo/requests?stream_id=${encodeURIComponent(streamId)}`)
  return response.json()
}

/** The upstream's record of the last request for a stream, once that request has ended. */
export async function upstream(streamId) {
  return until(async () => {
    const all = await records(streamId)
    const last = all.at(-1)
    return last && (last.finished || last.client_disconnected) ? last : null
  }, `the upstream request of stream ${streamId} to end`)
}

export async function native(path, init = {}) {
  const response = await fetch(`${API}${path}`, { ...init, headers: { ...AUTH, ...(init.headers ?? {}) } })
  assert.ok(response.ok, `${path}: ${response.status}`)
  return response.json()
}

export async function stopChat(chatId, headers = AUTH) {
  return fetch(`${API}/api/chat/${chatId}/stop`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
  })
}

/** `chatrelay-demo` with per-request switches (demo_upstream/script.py). */
export function demoModel(switches) {
  return `chatrelay-demo?${new URLSearchParams(switches)}`
}
