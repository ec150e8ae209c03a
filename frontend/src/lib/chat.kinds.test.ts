// The store with everything an answer can say (reasoning, tool calls, refusals), images, regenerate and copy.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ChatStore, SAVE_DELAY_MS } from './chat.svelte'
import { TOOL_NOT_RUN } from './history'
import { MAX_IMAGE_BYTES, memoryImages, type ImageStore } from './images'
import { readAll } from './persist'
import { fakeApi, fakeSources, SharedStorage } from './test-fakes'
import type { ChatMessage } from './types'

let stores: ChatStore[] = []

function tab(
  shared: SharedStorage,
  extra: { images?: ImageStore; clipboard?: Pick<Clipboard, 'writeText'> } = {},
) {
  const api = fakeApi()
  const sources = fakeSources()
  const { storage, window } = shared.tab()
  const store = new ChatStore({ api, eventSource: sources.factory, storage, window, ...extra })
  store.start()
  stores.push(store)
  return { store, api, sources, storage, window }
}

function lastAnswer(store: ChatStore): ChatMessage {
  const answer = store.answer
  if (!answer) throw new Error('no answer')
  return answer
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve()
}

/** Waits for the store's file reads and storage writes (FileReader works on macrotasks in jsdom). */
async function until(condition: () => boolean): Promise<void> {
  await vi.waitFor(() => expect(condition()).toBe(true))
}

function png(name = 'dot.png', bytes = 68): File {
  return new File([new Uint8Array(bytes).fill(7)], name, { type: 'image/png' })
}

beforeEach(() => {
  stores = []
})

afterEach(() => {
  stores.forEach((s) => s.dispose())
  vi.useRealTimers()
})

describe('answers with reasoning, tool calls and refusals', () => {
  it('assembles reasoning, text and interleaved parallel tool calls, stores them and resumes them after a reload', async () => {
    vi.useFakeTimers()
    const shared = new SharedStorage()
    const first = tab(shared)
    first.store.send('weather and time?')
    await settle()
    const source = first.sources.last()
    source.emit('reasoning', { text: 'The user wants ' }, '1-1')
    source.emit('reasoning', { text: 'two tools.\n' }, '1-2')
    source.emit('delta', { text: 'Checking **both**.' }, '1-3')
    source.emit('tool_call', { index: 0, id: 'call_w', name: 'get_weather', arguments: '' }, '1-4')
    source.emit('tool_call', { index: 1, id: 'call_t', name: 'get_time', arguments: '' }, '1-5')
    source.emit('tool_call', { index: 0, arguments: '{"city"' }, '1-6')
    source.emit('tool_call', { index: 1, arguments: '{"tz":' }, '1-7')
    vi.advanceTimersByTime(SAVE_DELAY_MS)
    source.emit('tool_call', { index: 0, arguments: ':"Paris"' }, '1-8') // not yet written when the page goes
    first.window.dispatchEvent(new Event('pagehide'))
    first.store.dispose()
    const stored = readAll(first.storage)[0]?.messages.at(-1)
    expect(stored).toMatchObject({
      lastEventId: '1-8',
      reasoning: 'The user wants two tools.\n',
      content: 'Checking **both**.',
      toolCalls: [
        { id: 'call_w', name: 'get_weather', arguments: '{"city":"Paris"' },
        { id: 'call_t', name: 'get_time', arguments: '{"tz":' },
      ],
    })

    const second = tab(shared)
    const resumed = second.sources.last()
    expect(resumed.url).toBe('/api/streams/stream1/events?offset=1-8')
    resumed.emit('tool_call', { index: 1, arguments: '"Asia/Tokyo"}' }, '1-9')
    resumed.emit('tool_call', { index: 0, arguments: '}' }, '1-10')
    resumed.emit('done', { finish_reason: 'tool_calls', usage: null }, '1-11')
    const answer = lastAnswer(second.store)
    expect(answer).toMatchObject({
      status: 'done',
      finishReason: 'tool_calls',
      reasoning: 'The user wants two tools.\n',
      content: 'Checking **both**.',
      toolCalls: [
        { id: 'call_w', name: 'get_weather', arguments: '{"city":"Paris"}' },
        { id: 'call_t', name: 'get_time', arguments: '{"tz":"Asia/Tokyo"}' },
      ],
    })
    expect(readAll(second.storage)[0]?.messages.at(-1)).toEqual(JSON.parse(JSON.stringify(answer)))
  })

  it('a reset after reasoning and a partial tool call leaves only the second attempt, here and in storage', async () => {
    const { store, sources, storage } = tab(new SharedStorage())
    store.send('q')
    await settle()
    const source = sources.last()
    source.emit('start', { attempt: 1, model: 'm' }, '1-0')
    source.emit('reasoning', { text: 'attempt one thinks' }, '1-1')
    source.emit(
      'tool_call',
      { index: 0, id: 'call_1', name: 'lookup', arguments: '{"q":"ha' },
      '1-2',
    )
    source.emit('reset', { attempt: 2 }, '1-3')
    source.emit('start', { attempt: 2, model: 'm' }, '1-4')
    source.emit('refusal', { text: 'I cannot help with that.' }, '1-5')
    source.emit('done', { finish_reason: 'stop' }, '1-6')
    const expected = {
      status: 'done',
      content: '',
      refusal: 'I cannot help with that.',
      lastEventId: '1-6',
    }
    for (const answer of [lastAnswer(store), readAll(storage)[0]?.messages.at(-1)]) {
      expect(answer).toMatchObject(expected)
      expect(answer).not.toHaveProperty('reasoning')
      expect(answer).not.toHaveProperty('toolCalls')
    }
  })

  it('reading again from the start (the offset is gone) drops every kind', async () => {
    const { store, api, sources } = tab(new SharedStorage())
    store.send('q')
    await settle()
    sources.last().emit('reasoning', { text: 'stale' }, '1-1')
    sources.last().emit('tool_call', { index: 0, id: 'c', name: 'f', arguments: '{' }, '1-2')
    api.probeEvents.mockResolvedValueOnce({ status: 410 })
    sources.last().fail(true)
    await settle()
    expect(sources.last().url).toBe('/api/streams/stream1/events')
    const answer = lastAnswer(store)
    expect(answer.reasoning).toBeUndefined()
    expect(answer.toolCalls).toBeUndefined()
  })

  it('sends answers back as Chat Completions messages: tool calls answered, reasoning left out', async () => {
    const { store, api, sources } = tab(new SharedStorage())
    store.send('weather?')
    await settle()
    let source = sources.last()
    source.emit('reasoning', { text: 'hidden thoughts' }, '1-1')
    source.emit(
      'tool_call',
      { index: 0, id: 'call_w', name: 'get_weather', arguments: '{}' },
      '1-2',
    )
    source.emit('done', { finish_reason: 'tool_calls' }, '1-3')
    store.send('something bad')
    await settle()
    source = sources.last()
    source.emit('refusal', { text: 'No.' }, '2-1')
    source.emit('done', { finish_reason: 'stop' }, '2-2')
    store.send('fine')
    await settle()
    expect(api.createStream).toHaveBeenLastCalledWith([
      { role: 'user', content: 'weather?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_w', type: 'function', function: { name: 'get_weather', arguments: '{}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_w', content: TOOL_NOT_RUN },
      { role: 'user', content: 'something bad' },
      { role: 'assistant', content: null, refusal: 'No.' },
      { role: 'user', content: 'fine' },
    ])
  })
})

describe('images', () => {
  it('stores attached images, sends them as data: URLs and shows them in a second tab', async () => {
    const shared = new SharedStorage()
    const images = memoryImages() // one IndexedDB for the origin
    const a = tab(shared, { images })
    const b = tab(shared, { images })
    await a.store.attach([png('one.png'), png('two.png', 100)])
    expect(a.store.attachments.map((x) => x.ref.name)).toEqual(['one.png', 'two.png'])
    const url = a.store.attachments[0]?.url ?? ''
    expect(url).toMatch(/^data:image\/png;base64,/)
    expect(a.store.send('What is this?')).toBe(true)
    expect(a.store.attachments).toEqual([])
    await until(() => a.api.createStream.mock.calls.length === 1)
    const [sent] = a.api.createStream.mock.calls[0] ?? []
    expect(sent).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is this?' },
          { type: 'image_url', image_url: { url } },
          { type: 'image_url', image_url: { url: expect.stringMatching(/^data:image\/png/) } },
        ],
      },
    ])
    const question = a.store.current?.messages[0]
    expect(question?.images?.map((i) => [i.name, i.type, i.bytes])).toEqual([
      ['one.png', 'image/png', 68],
      ['two.png', 'image/png', 100],
    ])
    // The conversation in localStorage holds the references only.
    expect(a.storage.getItem(a.storage.key(0) ?? '')).not.toContain('base64')

    const id = a.store.currentId ?? ''
    await until(() => b.store.conversations.some((c) => c.id === id))
    b.store.select(id)
    await until(() => b.store.imageUrls[question?.images?.[0]?.id ?? ''] === url)

    // A reload that lands on the conversation by its address (#id) reads its images too.
    const { storage, window } = shared.tab()
    window.location.hash = `#${id}`
    const reloaded = new ChatStore({
      api: fakeApi(),
      eventSource: fakeSources().factory,
      storage,
      window,
      images,
    })
    stores.push(reloaded)
    reloaded.start()
    expect(reloaded.currentId).toBe(id)
    await until(() => reloaded.imageUrls[question?.images?.[0]?.id ?? ''] === url)
  })

  it('refuses an image over the size limit or one the model cannot read, and says why', async () => {
    const { store } = tab(new SharedStorage())
    const huge = new File([new Uint8Array(MAX_IMAGE_BYTES + 1)], 'huge.png', { type: 'image/png' })
    const tiff = new File([new Uint8Array(4)], 'scan.tiff', { type: 'image/tiff' })
    await store.attach([huge, png(), tiff])
    expect(store.attachments.map((a) => a.ref.name)).toEqual(['dot.png'])
    expect(store.notice).toContain('“huge.png” is 10 MB: an image can be at most 10 MB.')
    expect(store.notice).toContain('“scan.tiff” is not an image the model can read')
  })

  it('sends a message of images only, and removing an attachment forgets it', async () => {
    const images = memoryImages()
    const { store, api } = tab(new SharedStorage(), { images })
    await store.attach([png('keep.png'), png('drop.png')])
    const dropped = store.attachments[1]?.ref.id ?? ''
    store.detach(dropped)
    await settle()
    expect((await images.get([dropped])).size).toBe(0)
    expect(store.send('  ')).toBe(true)
    expect(store.current?.title).toBe('Image')
    await until(() => api.createStream.mock.calls.length === 1)
    const [sent] = api.createStream.mock.calls[0] ?? []
    expect(sent?.[0]).toEqual({
      role: 'user',
      content: [{ type: 'image_url', image_url: { url: expect.stringMatching(/^data:/) } }],
    })
  })

  it('fails the answer clearly when an image of the history is no longer in this browser', async () => {
    const images = memoryImages()
    const { store, api, sources } = tab(new SharedStorage(), { images })
    await store.attach([png('gone.png')])
    store.send('look')
    await until(() => api.createStream.mock.calls.length === 1)
    sources.last().emit('delta', { text: 'A dot.' }, '1-1')
    sources.last().emit('done', { finish_reason: 'stop' }, '1-2')
    await images.remove(store.current?.messages[0]?.images?.map((i) => i.id) ?? [])
    store.regenerate(lastAnswer(store).id)
    await until(() => lastAnswer(store).status === 'error')
    expect(lastAnswer(store).error?.message).toContain('“gone.png” is no longer stored')
    expect(api.createStream).toHaveBeenCalledTimes(1)
  })
})

describe('regenerate and copy', () => {
  it('regenerates the last answer in place: a new stream for the same history', async () => {
    const { store, api, sources } = tab(new SharedStorage())
    store.send('one')
    await settle()
    sources.last().emit('delta', { text: 'first' }, '1-1')
    sources.last().emit('done', {}, '1-2')
    store.send('two')
    await settle()
    sources.last().emit('reasoning', { text: 'hm' }, '2-1')
    sources.last().emit('delta', { text: 'second' }, '2-2')
    sources.last().emit('done', {}, '2-3')
    const earlier = store.current?.messages[1]
    expect(store.canRegenerate).toBe(true)
    store.regenerate(earlier?.id ?? '') // not the last answer: nothing happens
    expect(api.createStream).toHaveBeenCalledTimes(2)

    const answer = lastAnswer(store)
    store.regenerate(answer.id)
    expect(answer).toMatchObject({ status: 'streaming', content: '' })
    expect(answer.reasoning).toBeUndefined()
    expect(store.canRegenerate).toBe(false)
    await settle()
    expect(api.createStream).toHaveBeenCalledTimes(3)
    expect(api.createStream.mock.calls[2]?.[0]).toEqual(api.createStream.mock.calls[1]?.[0])
    expect(sources.last().url).toBe('/api/streams/stream3/events')
    sources.last().emit('delta', { text: 'third' }, '3-1')
    sources.last().emit('done', {}, '3-2')
    expect(store.current?.messages.map((m) => m.content)).toEqual(['one', 'first', 'two', 'third'])
  })

  it('copies the Markdown source of an answer, or says why it could not', async () => {
    const writeText = vi.fn(async (_text: string) => undefined)
    const { store, sources } = tab(new SharedStorage(), { clipboard: { writeText } })
    store.send('q')
    await settle()
    sources.last().emit('delta', { text: '**bold** and `code`' }, '1-1')
    sources.last().emit('done', {}, '1-2')
    expect(await store.copy(lastAnswer(store).id)).toBe(true)
    expect(writeText).toHaveBeenCalledWith('**bold** and `code`')
    writeText.mockRejectedValueOnce(new Error('denied'))
    expect(await store.copy(lastAnswer(store).id)).toBe(false)
    expect(store.notice).toBe('Could not copy the answer: denied')
  })
})
