import { afterEach, describe, expect, it, vi } from 'vitest'
import { ApiError, cancelStream, createStream, eventsUrl, probeEvents } from './api'

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json', ...headers },
  })
}

afterEach(() => {
  vi.unstubAllGlobals()
})

describe('api', () => {
  it('posts the messages as JSON and returns the created stream', async () => {
    const fetch = vi.fn(async () =>
      json(202, { id: 's1', status: 'queued', events_url: 'e', status_url: 'u' }),
    )
    vi.stubGlobal('fetch', fetch)
    const created = await createStream([{ role: 'user', content: 'hi' }])
    expect(created.id).toBe('s1')
    expect(fetch).toHaveBeenCalledWith('/api/streams', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: '{"messages":[{"role":"user","content":"hi"}]}',
    })
  })

  it("turns the server's error body into an ApiError with Retry-After", async () => {
    vi.stubGlobal('fetch', async () =>
      json(429, { error: { code: 'busy', message: 'Too busy' } }, { 'Retry-After': '3' }),
    )
    const error = await cancelStream('s1').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ApiError)
    expect(error).toMatchObject({ status: 429, code: 'busy', message: 'Too busy', retryAfter: 3 })
  })

  it('reports an unreachable server as code network', async () => {
    vi.stubGlobal('fetch', async () => {
      throw new TypeError('Failed to fetch')
    })
    await expect(createStream([])).rejects.toMatchObject({ code: 'network', status: 0 })
  })

  it('builds event URLs with the offset and probes their status', async () => {
    expect(eventsUrl('a b')).toBe('/api/streams/a%20b/events')
    expect(eventsUrl('s', '1-2')).toBe('/api/streams/s/events?offset=1-2')
    vi.stubGlobal('fetch', async () =>
      json(410, { error: { code: 'offset_unavailable', message: 'gone' } }),
    )
    const probe = await probeEvents('s', '1-2')
    expect(probe.status).toBe(410)
    expect(probe.error?.code).toBe('offset_unavailable')
  })
})
