/** The shapes the page keeps (in memory and in localStorage) and the server's wire shapes it reads. */

export type Role = 'user' | 'assistant'

/** `streaming` until a terminal event (or a failure before the stream existed) settles the answer. */
export type MessageStatus = 'streaming' | 'done' | 'error' | 'cancelled'

export interface MessageError {
  code: string
  message: string
}

export interface ChatMessage {
  id: string
  role: Role
  /** For an answer: the concatenation of `delta` texts after the last `reset`, exactly as streamed. */
  content: string
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

export type StreamEventType = 'start' | 'delta' | 'done' | 'error' | 'cancelled' | 'reset'

export interface StreamCreated {
  id: string
  status: 'queued'
  events_url: string
  status_url: string
}

export interface OutgoingMessage {
  role: 'system' | 'user' | 'assistant'
  content: string
}
