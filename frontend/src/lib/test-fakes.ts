/** Fakes for the store's outside edges in jsdom tests: EventSource (jsdom has none), the API, Storage. */
import { vi } from 'vitest'
import type { Api, ProbeResult } from './api'
import type { EventSourceLike } from './stream'
import type { OutgoingMessage, StreamCreated } from './types'

export class FakeEventSource extends EventTarget implements EventSourceLike {
  readyState = 0
  closed = false
  readonly url: string

  constructor(url: string) {
    super()
    this.url = url
  }

  open(): void {
    this.readyState = 1
    this.dispatchEvent(new Event('open'))
  }

  /** A stored event as the server frames it: `id:`, `event:`, one line of JSON. */
  emit(type: string, data: unknown, id: string): void {
    this.dispatchEvent(new MessageEvent(type, { data: JSON.stringify(data), lastEventId: id }))
  }

  /** A network error (EventSource retries by itself) or a refused connection (it gives up). */
  fail(giveUp = false): void {
    this.readyState = giveUp ? 2 : 0
    this.dispatchEvent(new Event('error'))
  }

  close(): void {
    this.readyState = 2
    this.closed = true
  }
}

export interface Sources {
  all: FakeEventSource[]
  factory: (url: string) => FakeEventSource
  last(): FakeEventSource
  open(): FakeEventSource[]
}

export function fakeSources(): Sources {
  const all: FakeEventSource[] = []
  return {
    all,
    factory: (url) => {
      const source = new FakeEventSource(url)
      all.push(source)
      return source
    },
    last() {
      const source = all.at(-1)
      if (!source) throw new Error('no EventSource was opened')
      return source
    },
    open: () => all.filter((s) => !s.closed),
  }
}

export function fakeApi() {
  let next = 0
  const api = {
    createStream: vi.fn(async (_messages: OutgoingMessage[]): Promise<StreamCreated> => {
      next += 1
      const id = `stream${next}`
      return {
        id,
        status: 'queued',
        events_url: `/api/streams/${id}/events`,
        status_url: `/api/streams/${id}`,
      }
    }),
    cancelStream: vi.fn(async (_streamId: string): Promise<void> => undefined),
    probeEvents: vi.fn(async (_streamId: string, _offset?: string): Promise<ProbeResult> => ({
      status: 200,
    })),
    eventsUrl: (streamId: string, offset?: string) =>
      `/api/streams/${streamId}/events${offset ? `?offset=${offset}` : ''}`,
  } satisfies Api
  return api
}

/**
 * A Storage shared by several "tabs": a write by one tab is announced to the others as a `storage`
 * event on their window, as browsers do.
 */
export class SharedStorage {
  #data = new Map<string, string>()
  #windows: EventTarget[] = []

  /** The Storage one tab sees, and the window its events arrive on. */
  tab(): { storage: Storage; window: Window } {
    const win = new EventTarget() as unknown as Window
    Object.assign(win, {
      location: { hash: '' },
      history: { replaceState: () => undefined },
      document: Object.assign(new EventTarget(), { visibilityState: 'visible' }),
    })
    this.#windows.push(win)
    const shared = this
    const storage: Storage = {
      get length() {
        return shared.#data.size
      },
      key: (i) => [...shared.#data.keys()][i] ?? null,
      getItem: (key) => shared.#data.get(key) ?? null,
      setItem: (key, value) => shared.#set(win, key, String(value)),
      removeItem: (key) => shared.#set(win, key, null),
      clear: () => {
        for (const key of [...shared.#data.keys()]) shared.#set(win, key, null)
      },
    }
    return { storage, window: win }
  }

  #set(writer: EventTarget, key: string, value: string | null): void {
    const oldValue = this.#data.get(key) ?? null
    if (value === null) this.#data.delete(key)
    else this.#data.set(key, value)
    for (const win of this.#windows) {
      if (win === writer) continue
      // Browsers queue the event for other tabs; it never reaches the writer.
      queueMicrotask(() =>
        win.dispatchEvent(new StorageEvent('storage', { key, oldValue, newValue: value })),
      )
    }
  }
}
