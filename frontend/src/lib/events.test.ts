import { describe, expect, it } from 'vitest'
import { applyEvent, compareEventIds } from './events'
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
})
