/**
 * What a conversation sends back with a question: its messages before the answer asked for, as Chat
 * Completions messages (`POST /api/streams` passes them to the model as they are).
 */
import type { ContentPart, Conversation, ImageRef, OutgoingMessage } from './types'

/** What the page answers for a tool call in the history: it has no tools to run (see `historyBefore`). */
export const TOOL_NOT_RUN = 'Not run: this chat page cannot run tools.'

/** The images of the messages before `upTo`: what `historyBefore` needs the URLs of. */
export function imagesBefore(conversation: Conversation, upTo: string): ImageRef[] {
  const images: ImageRef[] = []
  for (const m of conversation.messages) {
    if (m.id === upTo) break
    images.push(...(m.images ?? []))
  }
  return images
}

/**
 * The history sent with a question: user messages and finished answers before `upTo`, as Chat Completions
 * messages. An answer goes back as what it said (content, refusal, tool calls), never its reasoning (DeepSeek
 * rejects it). Its tool calls are each followed by a `tool` message saying it was not run: the page has no
 * tools, and OpenAI rejects an assistant message with `tool_calls` that no tool message answers.
 */
export function historyBefore(
  conversation: Conversation,
  upTo: string,
  imageUrls: ReadonlyMap<string, string> = new Map(),
): OutgoingMessage[] {
  const history: OutgoingMessage[] = []
  for (const m of conversation.messages) {
    if (m.id === upTo) break
    if (m.role === 'user') {
      const images = m.images ?? []
      if (images.length === 0) {
        history.push({ role: 'user', content: m.content })
        continue
      }
      const parts: ContentPart[] = m.content ? [{ type: 'text', text: m.content }] : []
      for (const image of images) {
        parts.push({ type: 'image_url', image_url: { url: imageUrls.get(image.id) ?? '' } })
      }
      history.push({ role: 'user', content: parts })
      continue
    }
    if (m.status !== 'done') continue
    const calls = (m.toolCalls ?? []).filter((c) => c.id && c.name)
    if (!m.content && !m.refusal && calls.length === 0) continue
    history.push({
      role: 'assistant',
      content: m.content || null,
      ...(m.refusal ? { refusal: m.refusal } : {}),
      ...(calls.length > 0
        ? {
            tool_calls: calls.map((c) => ({
              id: c.id,
              type: 'function' as const,
              function: { name: c.name, arguments: c.arguments },
            })),
          }
        : {}),
    })
    for (const c of calls) history.push({ role: 'tool', tool_call_id: c.id, content: TOOL_NOT_RUN })
  }
  return history
}
