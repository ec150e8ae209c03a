/**
 * Conversations in localStorage, one key per conversation (`chatrelay:v1:conversation:<id>`), and how two
 * copies of one conversation (this tab's and another tab's) are merged.
 *
 * One key per conversation rather than one list: creating or deleting a conversation is a single write or
 * removal, so two tabs never overwrite each other's list, and the `storage` event names exactly what
 * changed. An answer in flight is stored with its `streamId`, `lastEventId` and everything it said up to that
 * event (content, reasoning, refusal, tool calls), always written together, so any stored copy is a consistent
 * place to resume from. Images are not in here but in IndexedDB (`images.ts`); messages hold their ids.
 */
import { compareEventIds, isSettled } from './events'
import type { ChatMessage, Conversation } from './types'

export const KEY_PREFIX = 'chatrelay:v1:conversation:'

export function storageKey(conversationId: string): string {
  return KEY_PREFIX + conversationId
}

/** The conversation id a storage key belongs to, or null for other keys. */
export function conversationIdOf(key: string | null): string | null {
  return key?.startsWith(KEY_PREFIX) ? key.slice(KEY_PREFIX.length) : null
}

const STATUSES = new Set(['streaming', 'done', 'error', 'cancelled'])

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}

function optional(value: unknown, check: (v: unknown) => boolean): boolean {
  return value === undefined || check(value)
}

const isString = (v: unknown) => typeof v === 'string'

function isToolCall(value: unknown): boolean {
  return isObject(value) && isString(value.id) && isString(value.name) && isString(value.arguments)
}

function isImageRef(value: unknown): boolean {
  return (
    isObject(value) &&
    isString(value.id) &&
    isString(value.type) &&
    isString(value.name) &&
    typeof value.bytes === 'number'
  )
}

function isMessage(value: unknown): value is ChatMessage {
  const m = value as ChatMessage | null
  return (
    typeof m === 'object' &&
    m !== null &&
    typeof m.id === 'string' &&
    (m.role === 'user' || m.role === 'assistant') &&
    typeof m.content === 'string' &&
    STATUSES.has(m.status) &&
    optional(m.reasoning, isString) &&
    optional(m.refusal, isString) &&
    optional(m.toolCalls, (v) => Array.isArray(v) && v.every(isToolCall)) &&
    optional(m.images, (v) => Array.isArray(v) && v.every(isImageRef))
  )
}

/** Parses a stored conversation; anything malformed (another version, a hand edit) is null. */
export function parseConversation(raw: string | null): Conversation | null {
  if (raw === null) return null
  try {
    const c = JSON.parse(raw) as Conversation | null
    if (
      typeof c !== 'object' ||
      c === null ||
      typeof c.id !== 'string' ||
      typeof c.title !== 'string' ||
      !Array.isArray(c.messages) ||
      !c.messages.every(isMessage)
    ) {
      return null
    }
    return c
  } catch {
    return null
  }
}

export function readConversation(storage: Storage, id: string): Conversation | null {
  return parseConversation(storage.getItem(storageKey(id)))
}

/** All stored conversations, most recently updated first. */
export function readAll(storage: Storage): Conversation[] {
  const found: Conversation[] = []
  for (let i = 0; i < storage.length; i++) {
    const id = conversationIdOf(storage.key(i))
    if (id === null) continue
    const conversation = readConversation(storage, id)
    if (conversation) found.push(conversation)
  }
  return found.sort((a, b) => b.updatedAt - a.updatedAt)
}

export function writeConversation(storage: Storage, conversation: Conversation): void {
  storage.setItem(storageKey(conversation.id), JSON.stringify(conversation))
}

export function removeConversation(storage: Storage, id: string): void {
  storage.removeItem(storageKey(id))
}

/**
 * Which of two copies of one message is further along. A newer attempt (retry) wins; then the copy that
 * knows its stream id; then a settled answer over one still streaming; then the later `lastEventId`.
 * Ties keep `ours`.
 */
export function newerMessage(ours: ChatMessage, theirs: ChatMessage): ChatMessage {
  if (ours.role !== 'assistant') return ours
  const attempt = (theirs.attemptAt ?? 0) - (ours.attemptAt ?? 0)
  if (attempt !== 0) return attempt > 0 ? theirs : ours
  if (ours.streamId !== theirs.streamId) {
    if (!ours.streamId) return theirs
    return ours
  }
  if (isSettled(ours.status)) return ours
  if (isSettled(theirs.status)) return theirs
  return compareEventIds(theirs.lastEventId, ours.lastEventId) > 0 ? theirs : ours
}

/**
 * Merges another copy of a conversation into ours: messages are only ever appended (a retry changes a
 * message in place), so the union by id, each message the further-along copy, loses nothing.
 */
export function mergeConversations(ours: Conversation, theirs: Conversation): Conversation {
  const theirsById = new Map(theirs.messages.map((m) => [m.id, m]))
  const oursIds = new Set(ours.messages.map((m) => m.id))
  const messages = ours.messages.map((m) => {
    const other = theirsById.get(m.id)
    return other ? newerMessage(m, other) : m
  })
  // Messages only they have go after the message that precedes them in their copy.
  theirs.messages.forEach((m, index) => {
    if (oursIds.has(m.id)) return
    const before = index > 0 ? theirs.messages[index - 1]?.id : undefined
    const at = before === undefined ? 0 : messages.findIndex((x) => x.id === before) + 1
    messages.splice(at === 0 && before !== undefined ? messages.length : at, 0, m)
    oursIds.add(m.id)
  })
  const newest = theirs.updatedAt > ours.updatedAt ? theirs : ours
  return {
    id: ours.id,
    title: newest.title,
    createdAt: Math.min(ours.createdAt, theirs.createdAt),
    updatedAt: Math.max(ours.updatedAt, theirs.updatedAt),
    messages,
  }
}
