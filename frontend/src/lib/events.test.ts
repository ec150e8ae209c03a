import { describe, expect, it } from 'vitest'
import { applyEvent, compareEventIds, MAX_TOOL_CALLS } from './events'
import type { ChatMessage } from './types'

function answer(): ChatMessage {
  return { id: 'm', role: 'assistant', content: '', status: 'streaming', createdAt: 0 }
}

describe('compareEventIds', () => {
  it('orders entry ids by milliseconds, then sequence, numerically', () => {
    expect(compareEventIds('9-0', '10-0')).toBeLessThan(0)
    expect(compareEventIds('10-2', '10-10')).toBeLessThan(0)
    expect(compareEventIds('10-10', '10-10')).toBe(0)
    expect(compareEventIds(undefined, '0-1')).toBeLessThan(0)
    expect(compareEventIds('0-1', undefined)).toBeGreaterThan(0)
  })
})

describe('applyEvent', () => {
  it('concatenates deltas exactly and records the offset', () => {
    const m = answer()
    applyEvent(m, 'start', { attempt: 1, model: 'demo' }, '1-0')
    applyEvent(m, 'delta', { text: 'a \n' }, '1-1')
    applyEvent(m, 'delta', { text: '\r\n🙂 ' }, '1-2')
    expect(m.content).toBe('a \n\r\n🙂 ')
    expect(m.model).toBe('demo')
    expect(m.lastEventId).toBe('1-2')
  })

  it('drops the partial text on reset', () => {
    const m = answer()
    applyEvent(m, 'delta', { text: 'old' }, '1-1')
    applyEvent(m, 'reset', { attempt: 2 }, '1-2')
    applyEvent(m, 'delta', { text: 'new' }, '1-3')
    expect(m.content).toBe('new')
  })

  it('ignores events at or before the offset', () => {
    const m = answer()
    applyEvent(m, 'delta', { text: 'a' }, '1-1')
    expect(applyEvent(m, 'delta', { text: 'a' }, '1-1')).toBe(false)
    expect(applyEvent(m, 'delta', { text: 'z' }, '0-9')).toBe(false)
    expect(m.content).toBe('a')
  })

  it('treats done, error and cancelled as final', () => {
    for (const [type, status] of [
      ['done', 'done'],
      ['error', 'error'],
      ['cancelled', 'cancelled'],
    ] as const) {
      const m = answer()
      applyEvent(m, 'delta', { text: 'x' }, '1-1')
      applyEvent(m, type, { code: 'c', message: 'boom', finish_reason: 'stop' }, '1-2')
      expect(m.status).toBe(status)
      expect(applyEvent(m, 'delta', { text: 'y' }, '1-3')).toBe(false)
      expect(applyEvent(m, 'reset', {}, '1-4')).toBe(false)
      expect(m.content).toBe('x')
    }
  })

  it('keeps an error event readable even when its payload is odd', () => {
    const m = answer()
    applyEvent(m, 'error', {}, '1-1')
    expect(m.error).toEqual({ code: 'error', message: 'The answer failed.' })
  })

  it('keeps reasoning, refusal and content apart, each exactly as streamed', () => {
    const m = answer()
    applyEvent(m, 'reasoning', { text: 'Think\n' }, '1-1')
    applyEvent(m, 'reasoning', { text: 'ing 🙂' }, '1-2')
    applyEvent(m, 'delta', { text: 'Answer' }, '1-3')
    applyEvent(m, 'refusal', { text: 'No, ' }, '1-4')
    applyEvent(m, 'refusal', { text: 'sorry.' }, '1-5')
    expect(m).toMatchObject({
      reasoning: 'Think\ning 🙂',
      content: 'Answer',
      refusal: 'No, sorry.',
    })
    expect(m.toolCalls).toBeUndefined()
  })

  it('assembles parallel tool calls whose fragments alternate', () => {
    const m = answer()
    const events: [unknown, string][] = [
      [{ index: 0, id: 'call_a', name: 'get_weather', arguments: '' }, '1-1'],
      [{ index: 1, id: 'call_b', name: 'get_time', arguments: '{"tz"' }, '1-2'],
      [{ index: 0, arguments: '{"city":' }, '1-3'],
      [{ index: 1, arguments: ':"Asia/Tokyo"}' }, '1-4'],
      [{ index: 0, arguments: '"Paris"}' }, '1-5'],
    ]
    for (const [data, id] of events) applyEvent(m, 'tool_call', data, id)
    expect(m.toolCalls).toEqual([
      { id: 'call_a', name: 'get_weather', arguments: '{"city":"Paris"}' },
      { id: 'call_b', name: 'get_time', arguments: '{"tz":"Asia/Tokyo"}' },
    ])
  })

  it('leaves only the second attempt after a reset that follows reasoning and a partial tool call', () => {
    const m = answer()
    applyEvent(m, 'start', { attempt: 1, model: 'demo' }, '1-0')
    applyEvent(m, 'reasoning', { text: 'first thoughts' }, '1-1')
    applyEvent(m, 'delta', { text: 'Let me check.' }, '1-2')
    applyEvent(m, 'tool_call', { index: 0, id: 'call_old', name: 'old', arguments: '{"ha' }, '1-3')
    applyEvent(m, 'tool_call', { index: 1, id: 'call_old2', name: 'old2', arguments: '' }, '1-4')
    applyEvent(m, 'reset', { attempt: 2 }, '1-5')
    expect(m).toMatchObject({ content: '' })
    expect(m.reasoning).toBeUndefined()
    expect(m.toolCalls).toBeUndefined()
    applyEvent(m, 'start', { attempt: 2, model: 'demo' }, '1-6')
    applyEvent(m, 'reasoning', { text: 'second' }, '1-7')
    applyEvent(m, 'tool_call', { index: 0, id: 'call_new', name: 'new', arguments: '{}' }, '1-8')
    applyEvent(m, 'done', { finish_reason: 'tool_calls' }, '1-9')
    expect(m).toMatchObject({
      status: 'done',
      finishReason: 'tool_calls',
      content: '',
      reasoning: 'second',
      toolCalls: [{ id: 'call_new', name: 'new', arguments: '{}' }],
    })
    expect(m.refusal).toBeUndefined()
  })

  it('drops tool call fragments with an index it cannot hold', () => {
    const m = answer()
    applyEvent(m, 'tool_call', { index: MAX_TOOL_CALLS, id: 'x', name: 'x', arguments: '' }, '1-1')
    applyEvent(m, 'tool_call', { index: -1, arguments: 'x' }, '1-2')
    applyEvent(m, 'tool_call', { index: '0', arguments: 'x' }, '1-3')
    expect(m.toolCalls).toBeUndefined()
  })
})
