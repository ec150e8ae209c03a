// 1. Send and read to the end with the real AI SDK: the final message's text is the upstream's, byte for byte.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { SDKS, assistants, demoModel, makeChat, textOf, unique, upstream } from './lib.mjs'

for (const [name, sdk] of Object.entries(SDKS)) {
  test(`${name}: a sent message is answered, exactly as the upstream said it`, async () => {
    // Newlines, fake SSE fields, emoji and quotes (`tricky`): what a relay's framing gets wrong first.
    const model = demoModel({ tokens: '60', tricky: '1', delay_ms: '2', seed: '14' })
    const chat = makeChat(sdk, { id: unique('send'), body: { model } })
    await chat.sendMessage({ text: 'Hello, chatrelay' })

    assert.equal(chat.status, 'ready', String(chat.error))
    const [streamId] = chat.seen.streamIds
    const record = await upstream(streamId)
    assert.equal(record.body.messages.at(-1).content, 'Hello, chatrelay')
    assert.equal(assistants(chat).length, 1)
    assert.equal(textOf(chat.lastMessage), record.sent_text)
    assert.ok(record.sent_text.includes('\n\nevent: fake\n'), 'the tricky text was sent')
    const types = chat.seen.chunks.map((c) => c.type)
    assert.deepEqual(types.slice(0, 3), ['start', 'start-step', 'text-start'])
    assert.deepEqual(types.slice(-3), ['text-end', 'finish-step', 'finish'])
    assert.equal(chat.lastMessage.id, chat.seen.chunks[0].messageId)
    const finish = chat.seen.chunks.at(-1)
    assert.equal(finish.messageMetadata.finishReason, 'stop')
    assert.equal(finish.messageMetadata.usage.completion_tokens, 60)
    assert.deepEqual(chat.lastMessage.metadata, finish.messageMetadata)

    // The next turn carries the whole conversation back, the answer as the assistant's content.
    await chat.sendMessage({ text: 'And again' })
    const second = await upstream(chat.seen.streamIds[1])
    assert.deepEqual(
      second.body.messages.map((m) => [m.role, m.content]),
      [
        ['user', 'Hello, chatrelay'],
        ['assistant', record.sent_text],
        ['user', 'And again'],
      ],
    )
    assert.equal(textOf(chat.lastMessage), second.sent_text)
    assert.equal(assistants(chat).length, 2)
  })
}
