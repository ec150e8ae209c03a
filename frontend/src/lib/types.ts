/** The shapes the page keeps (in memory and in localStorage) and the server's wire shapes it reads. */

export type Role = 'user' | 'assistant'

/** `streaming` until a terminal event (or a failure before the stream existed) settles the answer. */
export type MessageStatus = 'streaming' | 'done' | 'error' | 'cancelled'

export interface MessageError {
  code: string
  message: string
}

/** One tool call of an answer, assembled from its `tool_call` fragments (the array index is the call's `index`). */
export interface ToolCall {
  id: string
  name: string
  /** The concatenation of the fragments' `arguments`: JSON once complete, any prefix of it before. */
  arguments: string
}

/**
 * An image the user sent. The image itself (a `data:` URL) is kept in the browser's IndexedDB (`images.ts`),
 * not in the conversation in localStorage, whose few megabytes a single photo would fill.
 */
export interface ImageRef {
  id: string
  /** Media type, e.g. `image/png`. */
  type: string
  name: string
  bytes: number
}

export interface ChatMessage {
  id: string
  role: Role
  /** For an answer: the concatenation of `delta` texts after the last `reset`, exactly as streamed. */
  content: string
  /** Answer only: the `reasoning` texts after the last `reset`; absent when the model did not reason. */
  reasoning?: string
  /** Answer only: the `refusal` texts after the last `reset`. */
  refusal?: string
  /** Answer only: the tool calls after the last `reset`, by index. */
  toolCalls?: ToolCall[]
  /** User message only: the images sent with it. */
  images?: ImageRef[]
  status: MessageStatus
  createdAt: number
  /** Answer only: when this attempt was asked for (a retry starts a newer attempt on the same message). */
  attemptAt?: number
  /** Answer only: the server's stream id, once `POST /api/streams` has answered. */
  streamId?: string
  /** Answer only: the id of the last event applied to `content` (the resume offset). */
  lastEventId?: string
  model?: string
  finishReason?: string | null
  error?: MessageError
}

export interface Conversation {
  id: string
  title: string
  createdAt: number
  updatedAt: number
  messages: ChatMessage[]
}

/** How the page's link to an answer stands; shown by the `connection-status` element. */
export type ConnectionState =
  | 'idle' // nothing asked yet in this conversation
  | 'connecting' // asked; waiting for the server or the first connection
  | 'live' // reading the answer as it is written
  | 'reconnecting' // the connection dropped; trying again
  | 'resumed' // reading again after a reload or a dropped connection, from the last event seen
  | 'done' // the answer is settled (finished or stopped)
  | 'error' // the answer failed, or cannot be read any more

export type StreamEventType =
  | 'start'
  | 'delta'
  | 'reasoning'
  | 'tool_call'
  | 'refusal'
  | 'done'
  | 'error'
  | 'cancelled'
  | 'reset'

export interface StreamCreated {
  id: string
  status: 'queued'
  events_url: string
  status_url: string
}

export type ContentPart =
  { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } }

export interface OutgoingToolCall {
  id: string
  type: 'function'
  function: { name: string; arguments: string }
}

/** A message of the history sent with a question: Chat Completions' message shapes, as the page uses them. */
export type OutgoingMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string | ContentPart[] }
  | {
      role: 'assistant'
      content: string | null
      refusal?: string
      tool_calls?: OutgoingToolCall[]
    }
  | { role: 'tool'; tool_call_id: string; content: string }
