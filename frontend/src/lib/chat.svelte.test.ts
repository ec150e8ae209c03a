import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest'
import { ApiError } from './api'
import { ChatStore, ORPHAN_AFTER_MS, SAVE_DELAY_MS } from './chat.svelte'
import { readAll, storageKey } from './persist'
import { STALL_MS } from './stream'
import { fakeApi, fakeSources, SharedStorage, type Sources } from './test-fakes'
import type { ChatMessage } from './types'

type FakeApi = ReturnType<typeof fakeApi>

function tab(shared: SharedStorage, api: FakeApi = fakeApi(), sources: Sources = fakeSources()) {
  const { storage, window } = shared.tab()
  const store = new ChatStore({ api, eventSource: sources.factory, storage, window })
  store.start()
  return { store, api, sources, storage, window }
}

function lastAnswer(store: ChatStore): ChatMessage {
  const answer = store.answer
  if (!answer) throw new Error('no answer')
  return answer
}

/** The last answer of the conversation `id` as `store` holds it (another tab's current one, say). */
function answerIn(store: ChatStore, id: string | null): ChatMessage {
  const answer = store.conversations
    .find((c) => c.id === id)
    ?.messages.findLast((m) => m.role === 'assistant')
  if (!answer) throw new Error(`no answer in ${id}`)
  return answer
}

/** Lets pending promises (the create call, queued storage events) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve()
}

let stores: ChatStore[] = []
function track<T extends { store: ChatStore }>(t: T): T {
  stores.push(t.store)
  return t
}

beforeEach(() => {
  stores = []
})

afterEach(() => {
  stores.forEach((s) => s.dispose())
  vi.useRealTimers()
})

describe('sending and streaming', () => {
  it('posts the history, reads the answer over one EventSource and stores it', async () => {
    const shared = new SharedStorage()
    const { store, api, sources, storage } = track(tab(shared))
    expect(store.send('Hello there')).toBe(true)
    expect(store.busy).toBe(true)
    expect(store.connection).toBe('connecting')
    await settle()

    expect(api.createStream).toHaveBeenCalledWith([{ role: 'user', content: 'Hello there' }])
    expect(sources.all).toHaveLength(1)
    const source = sources.last()
    expect(source.url).toBe('/api/streams/stream1/events')
    source.open()
    expect(store.connection).toBe('live')
    source.emit('start', { attempt: 1, model: 'm' }, '1-0')
    source.emit('delta', { text: 'Hi ' }, '1-1')
    source.emit('delta', { text: 'you\n\n**x**' }, '1-2')
    expect(lastAnswer(store).content).toBe('Hi you\n\n**x**')
    source.emit('done', { finish_reason: 'stop', usage: null }, '1-3')

    const answer = lastAnswer(store)
    expect(answer.status).toBe('done')
    expect(answer.content).toBe('Hi you\n\n**x**')
    expect(source.closed).toBe(true)
    expect(store.busy).toBe(false)
    expect(store.connection).toBe('done')
    const stored = readAll(storage)[0]?.messages.at(-1)
    expect(stored).toMatchObject({ status: 'done', content: 'Hi you\n\n**x**', lastEventId: '1-3' })
  })

  it('sends user messages and finished answers as history', async () => {
    const { store, api, sources } = track(tab(new SharedStorage()))
    store.send('one')
    await settle()
    sources.last().emit('delta', { text: 'first answer' }, '1-1')
    sources.last().emit('done', { finish_reason: 'stop' }, '1-2')
    store.send('two')
    await settle()
    expect(api.createStream).toHaveBeenLastCalledWith([
      { role: 'user', content: 'one' },
      { role: 'assistant', content: 'first answer' },
      { role: 'user', content: 'two' },
    ])
  })

  it('does not send while an answer is being written', async () => {
    const { store, api } = track(tab(new SharedStorage()))
    store.send('one')
    expect(store.send('two')).toBe(false)
    expect(store.send('   ')).toBe(false)
    await settle()
    expect(api.createStream).toHaveBeenCalledTimes(1)
  })

  it('replaces the partial text on reset and treats terminal events as final', async () => {
    const { store, sources } = track(tab(new SharedStorage()))
    store.send('q')
    await settle()
    const source = sources.last()
    source.emit('delta', { text: 'half an ans' }, '1-1')
    source.emit('reset', { attempt: 2 }, '1-2')
    source.emit('delta', { text: 'whole answer' }, '1-3')
    source.emit('error', { code: 'upstream', message: 'model failed' }, '1-4')
    source.emit('delta', { text: ' more' }, '1-5')
    const answer = lastAnswer(store)
    expect(answer.content).toBe('whole answer')
    expect(answer.status).toBe('error')
    expect(answer.error).toEqual({ code: 'upstream', message: 'model failed' })
    expect(store.connection).toBe('error')
  })

  it('tells the server error event from a connection error of the same name', async () => {
    const { store, sources } = track(tab(new SharedStorage()))
    store.send('q')
    await settle()
    sources.last().fail() // connection error: EventSource reconnects by itself
    expect(store.connection).toBe('reconnecting')
    expect(lastAnswer(store).status).toBe('streaming')
    sources.last().open()
    expect(store.connection).toBe('resumed')
  })
})

describe('resuming', () => {
  it('resumes after a reload from the last stored event, without losing or repeating text', async () => {
    vi.useFakeTimers()
    const shared = new SharedStorage()
    const first = tab(shared)
    first.store.send('q')
    await settle()
    first.sources.last().emit('delta', { text: 'abc' }, '5-0')
    first.sources.last().emit('delta', { text: 'def' }, '5-1')
    vi.advanceTimersByTime(SAVE_DELAY_MS)
    first.sources.last().emit('delta', { text: 'ghi' }, '5-2') // not yet written when the page goes
    first.window.dispatchEvent(new Event('pagehide'))
    first.store.dispose()

    const second = track(tab(shared))
    expect(second.sources.all).toHaveLength(1)
    const source = second.sources.last()
    expect(source.url).toBe('/api/streams/stream1/events?offset=5-2')
    source.open()
    expect(second.store.connection).toBe('resumed')
    source.emit('delta', { text: 'jkl' }, '5-3')
    source.emit('done', { finish_reason: 'stop' }, '5-4')
    expect(lastAnswer(second.store).content).toBe('abcdefghijkl')
  })

  it('skips events it already has when a reconnect repeats them', async () => {
    const { store, sources } = track(tab(new SharedStorage()))
    store.send('q')
    await settle()
    const source = sources.last()
    source.emit('delta', { text: 'a' }, '1-1')
    source.emit('delta', { text: 'b' }, '1-2')
    source.fail()
    source.open()
    source.emit('delta', { text: 'b' }, '1-2')
    source.emit('delta', { text: 'c' }, '1-3')
    expect(lastAnswer(store).content).toBe('abc')
  })

  it('reads again from the start when the offset is no longer held (410)', async () => {
    const { store, api, sources } = track(tab(new SharedStorage()))
    store.send('q')
    await settle()
    sources.last().emit('delta', { text: 'stale ' }, '1-1')
    api.probeEvents.mockResolvedValueOnce({
      status: 410,
      error: new ApiError(410, 'offset_unavailable', 'gone'),
    })
    sources.last().fail(true)
    expect(store.connection).toBe('reconnecting')
    await settle()
    expect(api.probeEvents).toHaveBeenCalledWith('stream1', '1-1')
    expect(sources.all).toHaveLength(2)
    expect(sources.last().url).toBe('/api/streams/stream1/events')
    expect(lastAnswer(store).content).toBe('')
    sources.last().emit('delta', { text: 'fresh' }, '1-1')
    sources.last().emit('done', {}, '1-2')
    expect(lastAnswer(store).content).toBe('fresh')
  })

  it('fails the answer when the server does not know the stream (404)', async () => {
    const { store, api, sources } = track(tab(new SharedStorage()))
    store.send('q')
    await settle()
    api.probeEvents.mockResolvedValueOnce({
      status: 404,
      error: new ApiError(404, 'not_found', 'x'),
    })
    sources.last().fail(true)
    await settle()
    expect(lastAnswer(store).status).toBe('error')
    expect(lastAnswer(store).error?.code).toBe('not_found')
    expect(sources.open()).toHaveLength(0)
  })

  it('keeps trying while the server cannot be reached, then continues', async () => {
    vi.useFakeTimers()
    const { store, api, sources } = track(tab(new SharedStorage()))
    store.send('q')
    await settle()
    sources.last().emit('delta', { text: 'a' }, '1-1')
    api.probeEvents.mockRejectedValueOnce(new ApiError(0, 'network', 'offline'))
    api.probeEvents.mockResolvedValueOnce({
      status: 503,
      error: new ApiError(503, 'unavailable', 'busy', 2),
    })
    sources.last().fail(true)
    await settle()
    expect(sources.all).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(500)
    expect(api.probeEvents).toHaveBeenCalledTimes(2)
    expect(sources.all).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(2000) // Retry-After: 2
    expect(sources.all).toHaveLength(2)
    expect(sources.last().url).toBe('/api/streams/stream1/events?offset=1-1')
    expect(store.connection).toBe('reconnecting')
    sources.last().open()
    expect(store.connection).toBe('resumed')
  })

  it('drops the connection when the browser goes offline and resumes from the offset when back', async () => {
    const { store, sources, window } = track(tab(new SharedStorage()))
    store.send('q')
    await settle()
    const first = sources.last()
    first.open()
    first.emit('delta', { text: 'a' }, '1-1')
    window.dispatchEvent(new Event('offline'))
    expect(first.closed).toBe(true)
    expect(store.connection).toBe('reconnecting')
    await settle()
    window.dispatchEvent(new Event('online'))
    await settle()
    const second = sources.last()
    expect(second).not.toBe(first)
    expect(second.url).toBe('/api/streams/stream1/events?offset=1-1')
    second.open()
    expect(store.connection).toBe('resumed')
    second.emit('delta', { text: 'b' }, '1-2')
    second.emit('done', {}, '1-3')
    expect(lastAnswer(store).content).toBe('ab')
  })

  it('reads on from the offset after a retryable error (the server lost Redis for a while)', async () => {
    const { store, api, sources } = track(tab(new SharedStorage()))
    store.send('q')
    await settle()
    const first = sources.last()
    first.open()
    first.emit('delta', { text: 'a' }, '1-1')
    // Not stored, so no id: EventSource reports the previous event's id with it.
    const unavailable = { code: 'redis_unavailable', message: 'later', retryable: true }
    first.emit('error', unavailable, '1-1')
    expect(first.closed).toBe(true)
    expect(store.connection).toBe('reconnecting')
    expect(lastAnswer(store).status).toBe('streaming')
    await settle()
    expect(api.probeEvents).toHaveBeenCalledWith('stream1', '1-1')
    const second = sources.last()
    expect(second).not.toBe(first)
    expect(second.url).toBe('/api/streams/stream1/events?offset=1-1')
    second.open()
    second.emit('delta', { text: 'b' }, '1-2')
    second.emit('done', {}, '1-3')
    expect(lastAnswer(store)).toMatchObject({ content: 'ab', status: 'done' })
  })

  it('reconnects a connection that has been silent for too long', async () => {
    vi.useFakeTimers()
    const { store, sources } = track(tab(new SharedStorage()))
    store.send('q')
    await settle()
    sources.last().open()
    sources.last().emit('delta', { text: 'a' }, '1-1')
    await vi.advanceTimersByTimeAsync(STALL_MS - 1)
    expect(sources.all).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(sources.all).toHaveLength(2)
    expect(sources.all[0]?.closed).toBe(true)
    expect(sources.last().url).toBe('/api/streams/stream1/events?offset=1-1')
  })

  it('marks an answer whose request was lost in a reload as failed, with a retry', async () => {
    vi.useFakeTimers()
    const shared = new SharedStorage()
    const first = tab(shared)
    first.api.createStream.mockReturnValueOnce(new Promise(() => undefined)) // never answers
    first.store.send('q')
    first.store.dispose()
    const second = track(tab(shared))
    expect(lastAnswer(second.store).status).toBe('streaming')
    vi.advanceTimersByTime(ORPHAN_AFTER_MS)
    expect(lastAnswer(second.store).status).toBe('error')
    expect(lastAnswer(second.store).error?.code).toBe('interrupted')
  })
})

describe('stop and retry', () => {
  it('stop calls the cancel endpoint and keeps the connection until `cancelled`', async () => {
    const { store, api, sources } = track(tab(new SharedStorage()))
    store.send('q')
    await settle()
    const source = sources.last()
    source.emit('delta', { text: 'partial' }, '1-1')
    await store.stop()
    expect(api.cancelStream).toHaveBeenCalledWith('stream1')
    expect(store.stopping).toBe(true)
    expect(source.closed).toBe(false)
    source.emit('cancelled', { chars: 7, usage: null }, '1-2')
    expect(lastAnswer(store).status).toBe('cancelled')
    expect(lastAnswer(store).content).toBe('partial')
    expect(source.closed).toBe(true)
    expect(store.stopping).toBe(false)
  })

  it('stop before the server answered the request cancels as soon as it has', async () => {
    const { store, api } = track(tab(new SharedStorage()))
    let accept: (value: Awaited<ReturnType<FakeApi['createStream']>>) => void = () => undefined
    api.createStream.mockReturnValueOnce(new Promise((ok) => (accept = ok)))
    store.send('q')
    await store.stop()
    await settle()
    expect(api.cancelStream).not.toHaveBeenCalled()
    accept({ id: 'late', status: 'queued', events_url: '', status_url: '' })
    await settle()
    expect(api.cancelStream).toHaveBeenCalledWith('late')
  })

  it('shows why a failed Stop failed', async () => {
    const { store, api } = track(tab(new SharedStorage()))
    store.send('q')
    await settle()
    api.cancelStream.mockRejectedValueOnce(new ApiError(0, 'network', 'Cannot reach the server.'))
    await store.stop()
    expect(store.notice).toContain('Cannot reach the server.')
    expect(store.stopping).toBe(false)
  })

  it('a refused request becomes an error with the server message, and retry asks again', async () => {
    const { store, api, sources } = track(tab(new SharedStorage()))
    api.createStream.mockRejectedValueOnce(new ApiError(429, 'busy', 'Too many answers at once', 3))
    store.send('q')
    await settle()
    const answer = lastAnswer(store)
    expect(answer.status).toBe('error')
    expect(answer.error?.message).toBe('Too many answers at once')
    expect(store.connection).toBe('error')

    store.retry(answer.id)
    expect(lastAnswer(store).status).toBe('streaming')
    await settle()
    expect(api.createStream).toHaveBeenCalledTimes(2)
    expect(api.createStream).toHaveBeenLastCalledWith([{ role: 'user', content: 'q' }])
    sources.last().emit('delta', { text: 'ok' }, '1-1')
    sources.last().emit('done', {}, '1-2')
    expect(lastAnswer(store)).toMatchObject({ id: answer.id, status: 'done', content: 'ok' })
  })
})

describe('conversations and tabs', () => {
  it('restores conversations, newest first, and keeps empty chats out of storage', async () => {
    // A clock that moves on every reading: on a fast machine both chats were sent in the same millisecond,
    // and "newest first" had no answer.
    let clock = Date.now()
    const now = vi.spyOn(Date, 'now').mockImplementation(() => ++clock)
    onTestFinished(() => now.mockRestore())
    const shared = new SharedStorage()
    const first = tab(shared)
    first.store.send('first chat')
    await settle()
    first.sources.last().emit('done', {}, '1-1')
    first.store.newChat()
    first.store.send('second chat')
    await settle()
    first.sources.last().emit('done', {}, '1-1')
    first.store.newChat()
    first.store.dispose()

    const second = track(tab(shared))
    expect(second.store.conversations.map((c) => c.title)).toEqual(['second chat', 'first chat'])
    expect(second.store.current?.title).toBe('second chat')
    expect(second.sources.all).toHaveLength(0)
  })

  it('a second tab learns of an answer in flight and reads it over its own connection', async () => {
    const shared = new SharedStorage()
    const a = track(tab(shared))
    const b = track(tab(shared))
    a.store.send('question')
    await settle()
    const id = a.store.currentId
    expect(b.store.conversations.find((c) => c.id === id)?.messages).toHaveLength(2)
    await settle()
    expect(b.sources.all).toHaveLength(1)
    expect(b.sources.last().url).toBe('/api/streams/stream1/events')

    for (const s of [a.sources.last(), b.sources.last()]) {
      s.emit('delta', { text: 'same ' }, '1-1')
      s.emit('delta', { text: 'text' }, '1-2')
      s.emit('done', {}, '1-3')
    }
    await settle()
    expect(lastAnswer(a.store).content).toBe('same text')
    expect(answerIn(b.store, id).content).toBe('same text')
    expect(a.sources.open()).toHaveLength(0)
    expect(b.sources.open()).toHaveLength(0)
  })

  it("another tab's further copy of an answer does not double its text", async () => {
    vi.useFakeTimers()
    const shared = new SharedStorage()
    const a = track(tab(shared))
    const b = track(tab(shared))
    a.store.send('q')
    await settle()
    await settle()
    const id = a.store.currentId
    const sa = a.sources.last()
    const sb = b.sources.last()
    sa.emit('delta', { text: 'one ' }, '1-1')
    sa.emit('delta', { text: 'two ' }, '1-2')
    await vi.advanceTimersByTimeAsync(SAVE_DELAY_MS) // a writes; b adopts the copy that is further
    expect(answerIn(b.store, id).content).toBe('one two ')
    sb.emit('delta', { text: 'one ' }, '1-1') // b's own connection catches up: already applied
    sb.emit('delta', { text: 'two ' }, '1-2')
    sb.emit('delta', { text: 'three' }, '1-3')
    sb.emit('done', {}, '1-4')
    expect(answerIn(b.store, id).content).toBe('one two three')
    expect(b.sources.all).toHaveLength(1)
  })

  it('deleting a conversation stops its answer and removes it from every tab', async () => {
    const shared = new SharedStorage()
    const a = track(tab(shared))
    const b = track(tab(shared))
    a.store.send('to delete')
    await settle()
    await settle()
    const id = a.store.currentId ?? ''
    a.store.remove(id)
    expect(a.api.cancelStream).toHaveBeenCalledWith('stream1')
    expect(a.sources.open()).toHaveLength(0)
    expect(a.storage.getItem(storageKey(id))).toBeNull()
    await settle()
    expect(b.store.conversations.some((c) => c.id === id)).toBe(false)
    expect(b.sources.open()).toHaveLength(0)
    expect(b.store.current?.messages).toEqual([])
  })
})
