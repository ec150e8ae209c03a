/**
 * How one stored stream event changes an answer. Pure functions: the store calls them, tests drive them.
 *
 * The rules (the server's contract): the answer is what the events after the last `reset` say, each kind
 * concatenated in order: `delta` texts are its content, `reasoning` and `refusal` texts its reasoning and
 * refusal, and `tool_call` fragments its tool calls (a call's first fragment carries its `id` and `name`, its
 * arguments are the concatenation of its fragments' `arguments`); `done`, `error` and `cancelled` are terminal
 * and final; event ids are Redis stream entry ids
 * (`<ms>-<seq>`) that only grow, so an event whose id is not past `lastEventId` was applied already.
 * Skipping those is what keeps text from doubling when two sources (a reconnect, another tab's snapshot)
 * overlap.
 */
import type { ChatMessage, MessageStatus, StreamEventType } from './types'

export const STREAM_EVENT_TYPES: readonly StreamEventType[] = [
  'start',
  'delta',
  'reasoning',
  'tool_call',
  'refusal',
  'done',
  'error',
  'cancelled',
  'reset',
]

const TERMINAL_TYPES: ReadonlySet<string> = new Set(['done', 'error', 'cancelled'])

export function isTerminalType(type: string): boolean {
  return TERMINAL_TYPES.has(type)
}

export function isSettled(status: MessageStatus): boolean {
  return status !== 'streaming'
}

function parseId(id: string): [number, number] | null {
  const match = /^(\d+)-(\d+)$/.exec(id)
  return match ? [Number(match[1]), Number(match[2])] : null
}

/** Orders two entry ids (`<ms>-<seq>`); a missing id sorts before every id. */
export function compareEventIds(a: string | undefined, b: string | undefined): number {
  if (a === b) return 0
  if (a === undefined) return -1
  if (b === undefined) return 1
  const pa = parseId(a)
  const pb = parseId(b)
  if (!pa || !pb) return a < b ? -1 : 1
  return pa[0] - pb[0] || pa[1] - pb[1]
}

function field(data: unknown, name: string): unknown {
  return typeof data === 'object' && data !== null
    ? (data as Record<string, unknown>)[name]
    : undefined
}

/** Tool call indexes past this are dropped: a hostile index must not make the page allocate a huge array. */
export const MAX_TOOL_CALLS = 1024

/** Forgets everything an attempt said (a `reset`, or the text read again from the start). */
export function clearAnswer(message: ChatMessage): void {
  message.content = ''
  delete message.reasoning
  delete message.refusal
  delete message.toolCalls
}

function text(data: unknown): string | undefined {
  const value = field(data, 'text')
  return typeof value === 'string' ? value : undefined
}

function addToolCall(message: ChatMessage, data: unknown): void {
  const index = field(data, 'index')
  if (
    typeof index !== 'number' ||
    !Number.isInteger(index) ||
    index < 0 ||
    index >= MAX_TOOL_CALLS
  ) {
    return
  }
  // Read back after assigning: in the store `message` is a $state proxy, which copies what it is given.
  if (!message.toolCalls) message.toolCalls = []
  const calls = message.toolCalls
  while (calls.length <= index) calls.push({ id: '', name: '', arguments: '' })
  const call = calls[index]
  if (!call) return
  const id = field(data, 'id')
  const name = field(data, 'name')
  const args = field(data, 'arguments')
  if (typeof id === 'string' && id) call.id = id
  if (typeof name === 'string' && name) call.name = name
  if (typeof args === 'string') call.arguments += args
}

/**
 * Applies one event to `message` in place. Returns false when the event changed nothing: the answer is
 * already settled, or the event was applied before (its id is not past `lastEventId`).
 */
export function applyEvent(
  message: ChatMessage,
  type: StreamEventType,
  data: unknown,
  id: string | undefined,
): boolean {
  if (isSettled(message.status)) return false
  if (id !== undefined && message.lastEventId !== undefined) {
    if (compareEventIds(id, message.lastEventId) <= 0) return false
  }
  switch (type) {
    case 'start': {
      const model = field(data, 'model')
      if (typeof model === 'string') message.model = model
      break
    }
    case 'delta':
      message.content += text(data) ?? ''
      break
    case 'reasoning': {
      const more = text(data)
      if (more !== undefined) message.reasoning = (message.reasoning ?? '') + more
      break
    }
    case 'refusal': {
      const more = text(data)
      if (more !== undefined) message.refusal = (message.refusal ?? '') + more
      break
    }
    case 'tool_call':
      addToolCall(message, data)
      break
    case 'reset':
      clearAnswer(message)
      break
    case 'done': {
      message.status = 'done'
      const reason = field(data, 'finish_reason')
      message.finishReason = typeof reason === 'string' ? reason : null
      break
    }
    case 'cancelled':
      message.status = 'cancelled'
      break
    case 'error': {
      const code = field(data, 'code')
      const said = field(data, 'message')
      message.status = 'error'
      message.error = {
        code: typeof code === 'string' ? code : 'error',
        message: typeof said === 'string' && said ? said : 'The answer failed.',
      }
      break
    }
  }
  if (id !== undefined) message.lastEventId = id
  return true
}
