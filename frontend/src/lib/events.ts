/**
 * How one stored stream event changes an answer. Pure functions: the store calls them, tests drive them.
 *
 * The rules (the server's contract): the answer is the concatenation of `delta` texts after the last
 * `reset`; `done`, `error` and `cancelled` are terminal and final; event ids are Redis stream entry ids
 * (`<ms>-<seq>`) that only grow, so an event whose id is not past `lastEventId` was applied already.
 * Skipping those is what keeps text from doubling when two sources (a reconnect, another tab's snapshot)
 * overlap.
 */
import type { ChatMessage, MessageStatus, StreamEventType } from './types'

export const STREAM_EVENT_TYPES: readonly StreamEventType[] = [
  'start',
  'delta',
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
    case 'delta': {
      const text = field(data, 'text')
      if (typeof text === 'string') message.content += text
      break
    }
    case 'reset':
      message.content = ''
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
      const text = field(data, 'message')
      message.status = 'error'
      message.error = {
        code: typeof code === 'string' ? code : 'error',
        message: typeof text === 'string' && text ? text : 'The answer failed.',
      }
      break
    }
  }
  if (id !== undefined) message.lastEventId = id
  return true
}
