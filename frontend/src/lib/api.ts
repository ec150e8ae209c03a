/**
 * Every HTTP call the page makes to the chatrelay API. Errors come back as `ApiError` with the server's
 * stable `code` and human `message` (`{"error": {"code", "message"}}`), or code `network` when the
 * request never got an answer.
 */
import { sizeOf } from './format'
import type { OutgoingMessage, StreamCreated } from './types'

const BASE = '/api/streams'

export class ApiError extends Error {
  readonly status: number
  readonly code: string
  /** Seconds, from `Retry-After` on 429/503. */
  readonly retryAfter: number | undefined

  constructor(status: number, code: string, message: string, retryAfter?: number) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.retryAfter = retryAfter
  }
}

export interface CreateStreamOptions {
  model?: string
  temperature?: number
  max_tokens?: number
}

function retryAfterSeconds(response: Response): number | undefined {
  const value = response.headers.get('Retry-After')
  if (value === null) return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return Math.max(0, seconds)
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, (date - Date.now()) / 1000)
}

const FALLBACK_MESSAGES: Record<number, string> = {
  404: 'The server does not know this answer (it may have expired).',
  413: 'The conversation is too long to send.',
  429: 'The server is busy. Try again in a moment.',
  503: 'The service is unavailable right now. Try again in a moment.',
}

async function toApiError(response: Response): Promise<ApiError> {
  let code = `http_${response.status}`
  let message = FALLBACK_MESSAGES[response.status] ?? `The server answered ${response.status}.`
  try {
    const body: unknown = await response.json()
    const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error
    if (typeof error?.code === 'string') code = error.code
    if (typeof error?.message === 'string' && error.message) message = error.message
  } catch {
    // Not JSON (a proxy's error page): keep the fallback text.
  }
  return new ApiError(response.status, code, message, retryAfterSeconds(response))
}

async function request(url: string, init: RequestInit): Promise<Response> {
  let response: Response
  try {
    response = await fetch(url, init)
  } catch (cause) {
    if (cause instanceof DOMException && cause.name === 'AbortError') throw cause
    throw new ApiError(0, 'network', 'Cannot reach the server. Check your connection.')
  }
  if (!response.ok) throw await toApiError(response)
  return response
}

/** The server's default `CHATRELAY_MAX_BODY_BYTES`: a larger body is not sent (the server would answer 413). */
export const MAX_BODY_BYTES = 20_000_000

function postJson(url: string, body: unknown): Promise<Response> {
  const json = JSON.stringify(body)
  const bytes = new Blob([json]).size
  if (bytes > MAX_BODY_BYTES) {
    const message = `This conversation is ${sizeOf(bytes)} with its images; the server takes at most ${sizeOf(MAX_BODY_BYTES)}. Start a new chat to send more.`
    return Promise.reject(new ApiError(413, 'too_large', message))
  }
  return request(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: json,
  })
}

/** Queues an answer to `messages`; resolves with its stream id once the server accepted it (202). */
export async function createStream(
  messages: OutgoingMessage[],
  options: CreateStreamOptions = {},
): Promise<StreamCreated> {
  const response = await postJson(BASE, { messages, ...options })
  return (await response.json()) as StreamCreated
}

/** Asks the server to stop an answer (idempotent). The stream itself then ends with `cancelled`. */
export async function cancelStream(streamId: string): Promise<void> {
  await postJson(`${BASE}/${encodeURIComponent(streamId)}/cancel`, {})
}

/** The SSE address of an answer; `offset` is the last event id already applied (read what follows). */
export function eventsUrl(streamId: string, offset?: string): string {
  const url = `${BASE}/${encodeURIComponent(streamId)}/events`
  return offset ? `${url}?offset=${encodeURIComponent(offset)}` : url
}

/**
 * The HTTP status the events URL answers now, read from the headers only (the body is dropped at once).
 * EventSource hides the status of a failed connection; this is how the page tells 410 (offset no longer
 * held) from 404 (no such answer) from a busy server. Throws `ApiError` code `network` when unreachable.
 */
export async function probeEvents(streamId: string, offset?: string): Promise<ProbeResult> {
  const controller = new AbortController()
  let response: Response
  try {
    response = await fetch(eventsUrl(streamId, offset), {
      headers: { Accept: 'text/event-stream' },
      signal: controller.signal,
      cache: 'no-store',
    })
  } catch {
    throw new ApiError(0, 'network', 'Cannot reach the server. Check your connection.')
  }
  if (response.ok) {
    controller.abort()
    return { status: response.status }
  }
  const error = await toApiError(response)
  return { status: response.status, error }
}

export interface ProbeResult {
  status: number
  error?: ApiError
}

/** The calls the store makes; tests hand it a fake. */
export interface Api {
  createStream: typeof createStream
  cancelStream: typeof cancelStream
  probeEvents: typeof probeEvents
  eventsUrl: typeof eventsUrl
}

export const httpApi: Api = { createStream, cancelStream, probeEvents, eventsUrl }
