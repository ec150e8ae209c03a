import { describe, expect, it } from 'vitest'
import {
  mergeConversations,
  newerMessage,
  parseConversation,
  readAll,
  storageKey,
  writeConversation,
} from './persist'
import type { ChatMessage, Conversation } from './types'

function msg(id: string, extra: Partial<ChatMessage> = {}): ChatMessage {
  return { id, role: 'assistant', content: '', status: 'streaming', createdAt: 1, ...extra }
}

function conv(id: string, messages: ChatMessage[], updatedAt = 1): Conversation {
  return { id, title: id, createdAt: 1, updatedAt, messages }
}

describe('storage', () => {
  it('lists stored conversations newest first and skips malformed ones', () => {
    localStorage.clear()
    writeConversation(localStorage, conv('old', [], 1))
    writeConversation(localStorage, conv('new', [], 2))
    localStorage.setItem(storageKey('broken'), '{"id": 3')
    localStorage.setItem('unrelated', '{}')
    expect(readAll(localStorage).map((c) => c.id)).toEqual(['new', 'old'])
  })

  it('rejects messages of an unknown shape', () => {
    const bad = {
      ...conv('c', []),
      messages: [{ id: 'x', role: 'robot', content: '', status: 'done' }],
    }
    expect(parseConversation(JSON.stringify(bad))).toBeNull()
  })
})

describe('merging two copies', () => {
  it('prefers the further-along copy of an answer', () => {
    const early = msg('a', { streamId: 's', content: 'ab', lastEventId: '1-2' })
    const later = msg('a', { streamId: 's', content: 'abc', lastEventId: '1-3' })
    expect(newerMessage(early, later)).toBe(later)
    expect(newerMessage(later, early)).toBe(later)
    const settled = msg('a', {
      streamId: 's',
      content: 'a',
      lastEventId: '1-1',
      status: 'cancelled',
    })
    expect(newerMessage(later, settled)).toBe(settled)
  })

  it('prefers a newer attempt, and a copy that knows its stream id', () => {
    const failed = msg('a', { attemptAt: 1, status: 'error' })
    const retried = msg('a', { attemptAt: 2 })
    expect(newerMessage(failed, retried)).toBe(retried)
    const asked = msg('a', { attemptAt: 2 })
    const accepted = msg('a', { attemptAt: 2, streamId: 's' })
    expect(newerMessage(asked, accepted)).toBe(accepted)
  })

  it('keeps messages only one copy has, in order', () => {
    const ours = conv('c', [msg('1'), msg('2')])
    const theirs = conv('c', [msg('1'), msg('2'), msg('3'), msg('4')], 5)
    expect(mergeConversations(ours, theirs).messages.map((m) => m.id)).toEqual(['1', '2', '3', '4'])
    expect(mergeConversations(ours, theirs).updatedAt).toBe(5)
  })
})
