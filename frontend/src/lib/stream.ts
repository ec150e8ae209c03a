/**
 * One answer's Server-Sent Events connection, kept alive until a terminal event.
 *
 * EventSource reconnects by itself after a network error (sending `Last-Event-ID`), but gives up for good
 * on any non-200 answer and hides the status. When that happens this class asks the events URL for its
 * status (`probeEvents`) and acts on it: 410/400/204 read again from the start (the store drops the text),
 * 404 fails the answer, anything else (offline, 429, 503, a proxy's 502) waits and tries again. It closes
 * the EventSource on a terminal event, which the server follows by closing the response: left open,
 * EventSource would reconnect.
 *
 * A connection can also die without telling: after a network change the socket may hang half-open, and the
 * server's heartbeats are SSE comments that EventSource never surfaces. So the class also reconnects when
 * the browser reports going offline (`disconnect()`, then `retryNow()` when back online) and when nothing
 * has arrived for `STALL_MS`. Reconnecting is always safe: it resumes from the last applied event.
 *
 * An `error` event with `"retryable": true` is not the answer failing: the server could not read the stream
 * for a while (Redis unreachable) and ended the response. It is not stored and carries no `id:` (EventSource
 * still reports the previous one), so it is not passed on: the class reconnects from the offset instead.
 *
 * The resume state (text and last event id) is not kept here but read from the store through `offset()`,
 * so a reconnect always starts after the last event the page has applied.
 */
import type { Api } from './api'
import { isTerminalType, STREAM_EVENT_TYPES } from './events'
import type { StreamEventType } from './types'

/** What the class needs of `EventSource`; tests hand it a fake. */
export interface EventSourceLike {
  readonly readyState: number
  addEventListener(type: string, listener: (event: Event) => void): void
  close(): void
}

export type EventSourceFactory = (url: string) => EventSourceLike

// EventSource.CONNECTING / CLOSED, spelled out so the module also loads where EventSource is missing.
const CONNECTING = 0
const CLOSED = 2

const MAX_DELAY_MS = 10_000
const MAX_RESTARTS = 3
/** Longer than the server's 15 s heartbeat interval, with room for a slow first token. */
export const STALL_MS = 45_000

export type LinkState = 'connecting' | 'live' | 'reconnecting' | 'resumed'

export interface AnswerStreamHandlers {
  /** A stored event, in order; duplicates (after a reconnect) are the handler's to skip by id. */
  event(type: StreamEventType, data: unknown, id: string | undefined): void
  state(state: LinkState): void
  /** The id of the last event applied: where a fresh connection starts reading. */
  offset(): string | undefined
  /** The server no longer holds the offset: drop the partial text; the next connection reads it all. */
  restart(): void
  /** The answer cannot be read any more (the server does not know it). */
  fail(code: string, message: string): void
}

export interface AnswerStreamDeps {
  api: Pick<Api, 'eventsUrl' | 'probeEvents'>
  eventSource: EventSourceFactory
}

function isRetryable(data: unknown): boolean {
  return (
    typeof data === 'object' &&
    data !== null &&
    (data as { retryable?: unknown }).retryable === true
  )
}

export class AnswerStream {
  readonly streamId: string
  #deps: AnswerStreamDeps
  #on: AnswerStreamHandlers
  #source: EventSourceLike | null = null
  #closed = false
  #resumed: boolean
  #dropped = false
  #failures = 0
  #restarts = 0
  #timer: ReturnType<typeof setTimeout> | undefined
  #watchdog: ReturnType<typeof setTimeout> | undefined

  /** `resumed`: this page already read part of the answer before (a reload, another tab). */
  constructor(
    streamId: string,
    deps: AnswerStreamDeps,
    on: AnswerStreamHandlers,
    resumed: boolean,
  ) {
    this.streamId = streamId
    this.#deps = deps
    this.#on = on
    this.#resumed = resumed
  }

  get closed(): boolean {
    return this.#closed
  }

  open(): void {
    if (this.#closed) return
    const offset = this.#on.offset()
    const source = this.#deps.eventSource(this.#deps.api.eventsUrl(this.streamId, offset))
    this.#source = source
    if (!this.#dropped) this.#on.state('connecting')
    this.#arm()
    source.addEventListener('open', () => {
      if (source !== this.#source) return
      this.#arm()
      this.#failures = 0
      const resumed = this.#resumed || this.#dropped || offset !== undefined
      this.#on.state(resumed ? 'resumed' : 'live')
    })
    for (const type of STREAM_EVENT_TYPES) {
      if (type === 'error') continue
      source.addEventListener(type, (event) => this.#onEvent(source, type, event))
    }
    // The server's `event: error` and EventSource's own connection error share the name `error`;
    // only the server's carries data.
    source.addEventListener('error', (event) => {
      if (typeof (event as MessageEvent).data === 'string') this.#onEvent(source, 'error', event)
      else this.#onConnectionError(source)
    })
  }

  /** Stops reading for good (a terminal event, the answer deleted, the page leaving). */
  close(): void {
    this.#closed = true
    clearTimeout(this.#timer)
    clearTimeout(this.#watchdog)
    this.#source?.close()
    this.#source = null
  }

  /** The connection is gone or cannot be trusted (offline, stalled): drop it and read on from the offset. */
  disconnect(): void {
    if (this.#closed || !this.#source) return
    this.#source.close()
    this.#source = null
    clearTimeout(this.#watchdog)
    this.#dropped = true
    this.#on.state('reconnecting')
    void this.#recover()
  }

  /** The network is back: if waiting to try again, try now. */
  retryNow(): void {
    if (this.#closed || this.#timer === undefined) return
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#failures = 0
    void this.#recover()
  }

  #onEvent(source: EventSourceLike, type: StreamEventType, event: Event): void {
    if (source !== this.#source || this.#closed) return
    const message = event as MessageEvent<string>
    let data: unknown
    try {
      data = JSON.parse(message.data)
    } catch {
      data = {}
    }
    if (type === 'error' && isRetryable(data)) {
      this.disconnect()
      return
    }
    this.#failures = 0
    this.#arm()
    this.#on.event(type, data, message.lastEventId || undefined)
    if (isTerminalType(type)) this.close()
  }

  #onConnectionError(source: EventSourceLike): void {
    if (source !== this.#source || this.#closed) return
    this.#dropped = true
    this.#on.state('reconnecting')
    if (source.readyState === CONNECTING) return // EventSource retries by itself, with Last-Event-ID
    if (source.readyState === CLOSED) {
      source.close()
      this.#source = null
      void this.#recover()
    }
  }

  async #recover(): Promise<void> {
    if (this.#closed) return
    let status = 0
    let message = 'Cannot reach the server.'
    let retryAfter: number | undefined
    try {
      const probe = await this.#deps.api.probeEvents(this.streamId, this.#on.offset())
      status = probe.status
      if (probe.error) {
        message = probe.error.message
        retryAfter = probe.error.retryAfter
      }
    } catch {
      status = 0 // offline or unreachable
    }
    if (this.#closed) return
    if (status >= 200 && status < 300 && status !== 204) {
      this.open()
      return
    }
    if (status === 204 || status === 400 || status === 410) {
      // 410/400: the offset is not (or no longer) held. 204: nothing follows the offset although this
      // page never saw the end. Either way the text cannot be continued: read it again from the start.
      if (++this.#restarts > MAX_RESTARTS) {
        this.#fail('unreadable', message)
        return
      }
      this.#on.restart()
      this.open()
      return
    }
    if (status === 404) {
      this.#fail('not_found', 'The server no longer has this answer (it may have expired).')
      return
    }
    const delay =
      retryAfter !== undefined
        ? retryAfter * 1000
        : Math.min(MAX_DELAY_MS, 500 * 2 ** Math.min(this.#failures, 10))
    this.#failures += 1
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#recover()
    }, delay)
  }

  #arm(): void {
    clearTimeout(this.#watchdog)
    this.#watchdog = setTimeout(() => this.disconnect(), STALL_MS)
  }

  #fail(code: string, message: string): void {
    this.close()
    this.#on.fail(code, message)
  }
}
