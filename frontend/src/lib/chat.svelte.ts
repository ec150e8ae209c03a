/**
 * The page's state: conversations, the answers in flight and their connections, and their copies in
 * localStorage. Components read its fields and call its actions; nothing else talks to the API.
 *
 * - Each answer in flight has at most one connection (`AnswerStream`) in this tab, keyed by message id.
 * - Progress is written to localStorage at most every `SAVE_DELAY_MS`, and at once when an answer
 *   settles or the page is hidden; text and `lastEventId` are always written together, so a reload
 *   resumes with `?offset=<lastEventId>` and neither loses nor repeats text.
 * - Other tabs learn of changes through the `storage` event: they merge the stored copy into theirs
 *   (`mergeConversations`) and open their own connection for an answer in flight they were not reading.
 * - Images are stored (IndexedDB, `images.ts`) when they are attached, before the message that holds them is
 *   written, so a tab that reads the message finds them; they are read back to show them and to send them.
 */
import type { Api } from './api'
import { ApiError } from './api'
import { applyEvent, clearAnswer, isSettled } from './events'
import { historyBefore, imagesBefore } from './history'
import { ImageError, memoryImages, storeImage, type ImageStore } from './images'
import {
  conversationIdOf,
  mergeConversations,
  parseConversation,
  readAll,
  readConversation,
  removeConversation,
  writeConversation,
} from './persist'
import { AnswerStream, type EventSourceFactory, type LinkState } from './stream'
import type { ChatMessage, ConnectionState, Conversation, ImageRef, MessageError } from './types'

export const SAVE_DELAY_MS = 250
/** An answer stored as asked but without a stream id after this long: its request was lost (a reload). */
export const ORPHAN_AFTER_MS = 20_000
const TITLE_CHARS = 48
/** Images attached but never sent (a tab closed with a draft) are removed after this long. */
export const DRAFT_IMAGE_TTL_MS = 24 * 3600_000

export interface ChatStoreDeps {
  api: Api
  eventSource: EventSourceFactory
  storage: Storage
  /** Where `storage`, `online`, `pagehide` and `hashchange` come from; none in some tests. */
  window?: Window
  /** Where attached images are kept; in memory when absent (tests). */
  images?: ImageStore
  clipboard?: Pick<Clipboard, 'writeText'>
  now?: () => number
}

/** An image attached to the message being written, not sent yet. */
export interface Attachment {
  ref: ImageRef
  url: string
}

export function newId(): string {
  const bytes = new Uint8Array(12)
  // getRandomValues, unlike randomUUID, also exists on plain-http origins.
  crypto.getRandomValues(bytes)
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

function titleFrom(text: string): string {
  const line = text.trim().split('\n')[0]?.trim() ?? ''
  return line.length > TITLE_CHARS ? `${line.slice(0, TITLE_CHARS - 1)}…` : line || 'New chat'
}

function errorOf(cause: unknown): MessageError {
  if (cause instanceof ApiError) return { code: cause.code, message: cause.message }
  if (cause instanceof ImageError) return { code: 'image_missing', message: cause.message }
  return { code: 'client', message: cause instanceof Error ? cause.message : String(cause) }
}

export class ChatStore {
  conversations = $state<Conversation[]>([])
  currentId = $state<string | null>(null)
  /** A message about something that failed outside an answer (a Stop that did not reach the server). */
  notice = $state<string | null>(null)
  /** Images attached to the message being written. */
  attachments = $state<Attachment[]>([])
  /** The `data:` URLs of the images shown, by image id; null when this browser does not have the image. */
  imageUrls = $state<Record<string, string | null>>({})
  #links = $state<Record<string, LinkState>>({})
  #stopping = $state<Record<string, boolean>>({})

  current = $derived(this.conversations.find((c) => c.id === this.currentId) ?? null)
  /** The current conversation's last answer: what the connection status and Stop refer to. */
  answer = $derived(this.current?.messages.findLast((m) => m.role === 'assistant') ?? null)
  busy = $derived(this.answer?.status === 'streaming')
  stopping = $derived(this.answer ? this.#stopping[this.answer.id] === true : false)
  connection = $derived(this.connectionOf(this.answer))
  /** The current answer can be asked for again (a new stream for the same history). */
  canRegenerate = $derived(this.answer?.status === 'done' || this.answer?.status === 'cancelled')

  #deps: ChatStoreDeps
  #images: ImageStore
  #now: () => number
  #streams = new Map<string, AnswerStream>()
  #asking = new Set<string>()
  #stopRequested = new Set<string>()
  #persisted = new Set<string>()
  #dirty = new Set<string>()
  #saveTimer: ReturnType<typeof setTimeout> | undefined
  #orphanTimers = new Map<string, ReturnType<typeof setTimeout>>()
  #unlisten: (() => void)[] = []

  constructor(deps: ChatStoreDeps) {
    this.#deps = deps
    this.#images = deps.images ?? memoryImages()
    this.#now = deps.now ?? Date.now
  }

  /** Restores stored conversations, resumes the answers in flight and starts following other tabs. */
  start(): void {
    this.conversations = readAll(this.#deps.storage)
    for (const c of this.conversations) this.#persisted.add(c.id)
    const win = this.#deps.window
    const fromHash = win ? decodeURIComponent(win.location.hash.slice(1)) : ''
    if (fromHash && this.conversations.some((c) => c.id === fromHash)) {
      this.currentId = fromHash
      this.#loadImages(fromHash)
    } else if (this.conversations[0]) this.select(this.conversations[0].id)
    else this.newChat()
    for (const c of this.conversations) this.#follow(c.id, true)
    this.#sweepImages()
    if (win) {
      this.#listen(win, 'storage', (e) => this.#onStorage(e as StorageEvent))
      this.#listen(win, 'pagehide', () => this.flush())
      this.#listen(win.document, 'visibilitychange', () => {
        if (win.document.visibilityState === 'hidden') this.flush()
      })
      // Offline, a connection is dead or half-open (offline emulation even leaves it delivering):
      // drop it at once and resume from the last event when the network is back.
      this.#listen(win, 'offline', () => this.#streams.forEach((s) => s.disconnect()))
      this.#listen(win, 'online', () => this.#streams.forEach((s) => s.retryNow()))
      this.#listen(win, 'hashchange', () => {
        const id = decodeURIComponent(win.location.hash.slice(1))
        if (id && id !== this.currentId && this.#find(id)) this.select(id)
      })
    }
  }

  /** Closes every connection and listener (the answers go on on the server). */
  dispose(): void {
    this.flush()
    this.#unlisten.forEach((off) => off())
    this.#unlisten = []
    this.#streams.forEach((s) => s.close())
    this.#streams.clear()
    this.#orphanTimers.forEach((t) => clearTimeout(t))
    this.#orphanTimers.clear()
  }

  connectionOf(message: ChatMessage | null): ConnectionState {
    if (!message) return 'idle'
    if (message.status === 'error') return 'error'
    if (message.status !== 'streaming') return 'done'
    return this.#links[message.id] ?? 'connecting'
  }

  // ---- actions -------------------------------------------------------------------------------------

  newChat(): void {
    if (this.current && this.current.messages.length === 0) return
    const now = this.#now()
    const conversation: Conversation = {
      id: newId(),
      title: 'New chat',
      createdAt: now,
      updatedAt: now,
      messages: [],
    }
    this.conversations.unshift(conversation)
    this.select(conversation.id)
  }

  select(id: string): void {
    // An empty chat left behind is not kept.
    this.conversations = this.conversations.filter(
      (c) => c.id === id || c.messages.length > 0 || this.#persisted.has(c.id),
    )
    this.currentId = id
    this.#loadImages(id)
    const win = this.#deps.window
    if (win && decodeURIComponent(win.location.hash.slice(1)) !== id) {
      win.history.replaceState(null, '', `#${encodeURIComponent(id)}`)
    }
  }

  /** Deletes a conversation here and in every tab; an answer still being written is stopped. */
  remove(id: string): void {
    const conversation = this.#find(id)
    if (!conversation) return
    for (const m of conversation.messages) {
      if (m.role === 'assistant' && m.status === 'streaming' && m.streamId) {
        this.#deps.api.cancelStream(m.streamId).catch(() => undefined)
      }
    }
    removeConversation(this.#deps.storage, id)
    const images = conversation.messages.flatMap((m) => m.images ?? []).map((i) => i.id)
    if (images.length > 0) this.#images.remove(images).catch(() => undefined)
    this.#forget(id)
  }

  /**
   * Checks, reads and stores images for the message being written. One that cannot be sent (not an image
   * the model reads, larger than the limit) is left out and the notice says why.
   */
  async attach(files: Iterable<File>): Promise<void> {
    const problems: string[] = []
    for (const file of files) {
      const id = newId()
      try {
        const { ref, url } = await storeImage(this.#images, file, id, this.#now())
        this.imageUrls[id] = url
        this.attachments.push({ ref, url })
      } catch (cause) {
        problems.push(cause instanceof ImageError ? cause.message : errorOf(cause).message)
      }
    }
    if (problems.length > 0) this.notice = problems.join(' ')
  }

  /** Takes an attached image off the message being written. */
  detach(imageId: string): void {
    this.attachments = this.attachments.filter((a) => a.ref.id !== imageId)
    this.#images.remove([imageId]).catch(() => undefined)
  }

  /**
   * Sends `text` and the attached images in the current conversation and starts its answer. False when it
   * cannot be sent now.
   */
  send(text: string): boolean {
    const images = this.attachments.map((a) => a.ref)
    if ((!text.trim() && images.length === 0) || this.busy) return false
    if (!this.current) this.newChat()
    const conversation = this.current
    if (!conversation) return false
    const now = this.#now()
    if (conversation.messages.length === 0) {
      conversation.title = text.trim() ? titleFrom(text) : images.length > 1 ? 'Images' : 'Image'
    }
    const question: ChatMessage = {
      id: newId(),
      role: 'user',
      content: text.trim() ? text : '', // images alone: no blank text part
      status: 'done',
      createdAt: now,
    }
    if (images.length > 0) question.images = images
    this.attachments = []
    conversation.messages.push(question, {
      id: newId(),
      role: 'assistant',
      content: '',
      status: 'streaming',
      createdAt: now,
      attemptAt: now,
    })
    conversation.updatedAt = now
    this.#sortByUpdate()
    const answer = conversation.messages.at(-1)
    if (!answer) return false
    this.#save(conversation.id, true)
    void this.#ask(conversation.id, answer.id)
    return true
  }

  /** Asks the server to stop the current answer. The stream then ends with `cancelled`. */
  async stop(): Promise<void> {
    const answer = this.answer
    if (!answer || answer.status !== 'streaming' || this.#stopping[answer.id]) return
    this.#stopping[answer.id] = true
    if (!answer.streamId) {
      this.#stopRequested.add(answer.id) // cancelled as soon as the server has given it an id
      return
    }
    await this.#cancel(answer.id, answer.streamId)
  }

  /** Asks again for a failed answer, in place, with the history before it. */
  retry(messageId: string): void {
    const conversation = this.current
    const answer = conversation?.messages.find((m) => m.id === messageId)
    if (!conversation || !answer || answer.role !== 'assistant' || answer.status !== 'error') return
    if (this.busy && this.answer?.id !== messageId) return
    this.#askAgain(conversation, answer)
  }

  /**
   * Replaces the current conversation's last answer with a new one to the same history (a new stream).
   * Only the last: the turns after an earlier answer were asked with it, and messages are never taken out
   * of a conversation (that is what lets two tabs' copies merge, see `persist.ts`).
   */
  regenerate(messageId: string): void {
    const conversation = this.current
    const answer = this.answer
    if (!conversation || !answer || answer.id !== messageId || !this.canRegenerate) return
    this.#askAgain(conversation, answer)
  }

  /** Puts an answer's Markdown source (or its refusal) on the clipboard; false when it did not. */
  async copy(messageId: string): Promise<boolean> {
    const message = this.current?.messages.find((m) => m.id === messageId)
    const text = message ? message.content || message.refusal || '' : ''
    if (!text) return false
    try {
      const clipboard = this.#deps.clipboard
      if (!clipboard) throw new Error('this browser gives the page no clipboard (it needs https)')
      await clipboard.writeText(text)
      return true
    } catch (cause) {
      this.notice = `Could not copy the answer: ${errorOf(cause).message}`
      return false
    }
  }

  #askAgain(conversation: Conversation, answer: ChatMessage): void {
    this.#closeStream(answer.id)
    // Strictly later than the attempt before: merging copies picks the newer attempt by this.
    answer.attemptAt = Math.max(this.#now(), (answer.attemptAt ?? 0) + 1)
    answer.status = 'streaming'
    clearAnswer(answer)
    answer.streamId = undefined
    answer.lastEventId = undefined
    answer.error = undefined
    answer.finishReason = undefined
    answer.model = undefined
    this.#save(conversation.id, true)
    void this.#ask(conversation.id, answer.id)
  }

  dismissNotice(): void {
    this.notice = null
  }

  /** Writes every pending change to localStorage now. */
  flush(): void {
    clearTimeout(this.#saveTimer)
    this.#saveTimer = undefined
    const ids = [...this.#dirty]
    this.#dirty.clear()
    for (const id of ids) this.#write(id)
  }

  /** Plain copies of the conversations, for the `window.__chatrelay` debug hook and tests. */
  snapshot(): Conversation[] {
    return $state.snapshot(this.conversations)
  }

  // ---- asking and reading --------------------------------------------------------------------------

  async #ask(conversationId: string, messageId: string): Promise<void> {
    const conversation = this.#find(conversationId)
    const answer = conversation?.messages.find((m) => m.id === messageId)
    if (!conversation || !answer) return
    const attemptAt = answer.attemptAt
    this.#asking.add(messageId)
    this.#links[messageId] = 'connecting'
    let streamId: string | undefined
    let failure: MessageError | undefined
    try {
      const images = imagesBefore(conversation, messageId)
      const urls = await this.#images.get(images.map((i) => i.id))
      const missing = images.find((i) => !urls.has(i.id))
      if (missing) {
        throw new ImageError(
          `The image “${missing.name}” is no longer stored in this browser, so the conversation cannot be sent again.`,
        )
      }
      const created = await this.#deps.api.createStream(
        historyBefore(conversation, messageId, urls),
      )
      streamId = created.id
    } catch (cause) {
      failure = errorOf(cause)
    } finally {
      this.#asking.delete(messageId)
    }
    const current = this.#message(conversationId, messageId)
    if (!current || current.attemptAt !== attemptAt || current.status !== 'streaming') {
      // Deleted or superseded while the request was out: stop what it started.
      if (streamId) this.#deps.api.cancelStream(streamId).catch(() => undefined)
      return
    }
    if (failure || !streamId) {
      current.status = 'error'
      current.error = failure ?? { code: 'client', message: 'No stream id in the answer.' }
      delete this.#stopping[messageId]
      this.#save(conversationId, true)
      return
    }
    current.streamId = streamId
    this.#save(conversationId, true)
    if (this.#stopRequested.delete(messageId)) void this.#cancel(messageId, streamId)
    this.#connect(conversationId, messageId, false)
  }

  async #cancel(messageId: string, streamId: string): Promise<void> {
    try {
      await this.#deps.api.cancelStream(streamId)
    } catch (cause) {
      delete this.#stopping[messageId]
      this.notice = `Could not stop the answer: ${errorOf(cause).message}`
    }
  }

  #connect(conversationId: string, messageId: string, resumed: boolean): void {
    if (this.#streams.has(messageId)) return
    const message = this.#message(conversationId, messageId)
    const streamId = message?.streamId
    if (!message || !streamId || isSettled(message.status)) return
    const current = () => {
      const m = this.#message(conversationId, messageId)
      return m?.streamId === streamId ? m : undefined
    }
    const stream = new AnswerStream(
      streamId,
      { api: this.#deps.api, eventSource: this.#deps.eventSource },
      {
        event: (type, data, id) => {
          const m = current()
          if (!m) {
            this.#closeStream(messageId)
            return
          }
          if (!applyEvent(m, type, data, id)) return
          if (isSettled(m.status)) this.#settled(conversationId, messageId)
          else this.#save(conversationId, false)
        },
        state: (state) => {
          this.#links[messageId] = state
        },
        offset: () => current()?.lastEventId,
        restart: () => {
          const m = current()
          if (!m) return
          clearAnswer(m)
          m.lastEventId = undefined
          this.#save(conversationId, true)
        },
        fail: (code, text) => {
          const m = current()
          if (!m || isSettled(m.status)) return
          m.status = 'error'
          m.error = { code, message: text }
          this.#settled(conversationId, messageId)
        },
      },
      resumed,
    )
    this.#streams.set(messageId, stream)
    stream.open()
  }

  #settled(conversationId: string, messageId: string): void {
    this.#closeStream(messageId)
    delete this.#stopping[messageId]
    delete this.#links[messageId]
    this.#save(conversationId, true)
  }

  #closeStream(messageId: string): void {
    this.#streams.get(messageId)?.close()
    this.#streams.delete(messageId)
  }

  /** Opens connections for a conversation's answers in flight, and closes those that have settled. */
  #follow(conversationId: string, resumed: boolean): void {
    const conversation = this.#find(conversationId)
    if (!conversation) return
    for (const m of conversation.messages) {
      if (m.role !== 'assistant') continue
      if (isSettled(m.status)) {
        if (this.#streams.has(m.id)) this.#settled(conversationId, m.id)
      } else if (m.streamId) {
        this.#connect(conversationId, m.id, resumed || m.lastEventId !== undefined)
      } else if (!this.#asking.has(m.id)) {
        this.#watchOrphan(conversationId, m.id)
      }
    }
  }

  /** An answer asked for (here before a reload, or in another tab) whose stream id never arrives. */
  #watchOrphan(conversationId: string, messageId: string): void {
    if (this.#orphanTimers.has(messageId)) return
    const m = this.#message(conversationId, messageId)
    if (!m) return
    const wait = Math.max(0, (m.attemptAt ?? m.createdAt) + ORPHAN_AFTER_MS - this.#now())
    const check = () => {
      this.#orphanTimers.delete(messageId)
      const current = this.#message(conversationId, messageId)
      if (!current || current.streamId || current.status !== 'streaming') return
      if (this.#asking.has(messageId)) return
      current.status = 'error'
      current.error = {
        code: 'interrupted',
        message: 'The request was interrupted before the server accepted it.',
      }
      this.#save(conversationId, true)
    }
    if (wait === 0) check()
    else this.#orphanTimers.set(messageId, setTimeout(check, wait))
  }

  // ---- storage -------------------------------------------------------------------------------------

  #save(conversationId: string, now: boolean): void {
    this.#dirty.add(conversationId)
    if (now) this.flush()
    else this.#saveTimer ??= setTimeout(() => this.flush(), SAVE_DELAY_MS)
  }

  /** Read-merge-write: another tab may have added to the stored copy since this tab last read it. */
  #write(conversationId: string): void {
    const conversation = this.#find(conversationId)
    if (!conversation || conversation.messages.length === 0) return
    const storage = this.#deps.storage
    const stored = readConversation(storage, conversationId)
    if (!stored && this.#persisted.has(conversationId)) {
      this.#forget(conversationId) // deleted in another tab
      return
    }
    const ours = $state.snapshot(conversation) as Conversation
    const merged = stored ? mergeConversations(ours, stored) : ours
    try {
      writeConversation(storage, merged)
      this.#persisted.add(conversationId)
    } catch (cause) {
      this.notice = `Could not save the conversation in this browser: ${errorOf(cause).message}`
    }
    if (stored) this.#adopt(merged)
  }

  #onStorage(event: StorageEvent): void {
    if (event.storageArea && event.storageArea !== this.#deps.storage) return
    if (event.key === null) {
      // Storage cleared in another tab.
      for (const c of [...this.conversations]) if (this.#persisted.has(c.id)) this.#forget(c.id)
      return
    }
    const id = conversationIdOf(event.key)
    if (id === null) return
    if (event.newValue === null) {
      this.#forget(id)
      return
    }
    const incoming = parseConversation(event.newValue)
    if (!incoming || incoming.id !== id) return
    this.#persisted.add(id)
    this.#adopt(incoming)
  }

  /** Merges another copy of a conversation into this tab's state, keeping unchanged messages as they are. */
  #adopt(incoming: Conversation): void {
    const local = this.#find(incoming.id)
    if (!local) {
      this.conversations.push(incoming)
      this.#sortByUpdate()
      this.#follow(incoming.id, false)
      return
    }
    const merged = mergeConversations($state.snapshot(local) as Conversation, incoming)
    const byId = new Map(local.messages.map((m) => [m.id, m]))
    let changed = merged.messages.length !== local.messages.length
    const messages = merged.messages.map((m, i) => {
      const mine = byId.get(m.id)
      if (mine && JSON.stringify($state.snapshot(mine)) === JSON.stringify(m)) {
        if (local.messages[i] !== mine) changed = true
        return mine
      }
      changed = true
      return m
    })
    if (changed) local.messages = messages
    if (local.title !== merged.title) local.title = merged.title
    if (local.updatedAt !== merged.updatedAt) {
      local.updatedAt = merged.updatedAt
      this.#sortByUpdate()
    }
    if (changed) {
      this.#follow(incoming.id, false)
      if (incoming.id === this.currentId) this.#loadImages(incoming.id)
    }
  }

  /** Drops a conversation deleted here or in another tab. */
  #forget(id: string): void {
    const conversation = this.#find(id)
    for (const m of conversation?.messages ?? []) {
      this.#closeStream(m.id)
      clearTimeout(this.#orphanTimers.get(m.id))
      this.#orphanTimers.delete(m.id)
    }
    this.#persisted.delete(id)
    this.#dirty.delete(id)
    this.conversations = this.conversations.filter((c) => c.id !== id)
    if (this.currentId === id) {
      const next = this.conversations[0]
      if (next) this.select(next.id)
      else {
        this.currentId = null
        this.newChat()
      }
    }
  }

  // ---- images --------------------------------------------------------------------------------------

  /** Reads the images of a conversation's messages that this tab has not read yet. */
  #loadImages(conversationId: string): void {
    const ids = (this.#find(conversationId)?.messages ?? [])
      .flatMap((m) => m.images ?? [])
      .map((i) => i.id)
      .filter((id) => !(id in this.imageUrls))
    if (ids.length === 0) return
    this.#images.get(ids).then(
      (urls) => ids.forEach((id) => (this.imageUrls[id] = urls.get(id) ?? null)),
      () => ids.forEach((id) => (this.imageUrls[id] = null)),
    )
  }

  /** Removes old images that no stored conversation holds: drafts of tabs closed before sending. */
  #sweepImages(): void {
    const keep = new Set(
      this.conversations.flatMap((c) => c.messages.flatMap((m) => m.images ?? [])).map((i) => i.id),
    )
    this.#images.sweep(this.#now() - DRAFT_IMAGE_TTL_MS, keep).catch(() => undefined)
  }

  // ---- lookups -------------------------------------------------------------------------------------

  #find(conversationId: string): Conversation | undefined {
    return this.conversations.find((c) => c.id === conversationId)
  }

  #message(conversationId: string, messageId: string): ChatMessage | undefined {
    return this.#find(conversationId)?.messages.find((m) => m.id === messageId)
  }

  #sortByUpdate(): void {
    this.conversations.sort((a, b) => b.updatedAt - a.updatedAt)
  }

  #listen(target: EventTarget, type: string, handler: (event: Event) => void): void {
    target.addEventListener(type, handler)
    this.#unlisten.push(() => target.removeEventListener(type, handler))
  }
}
