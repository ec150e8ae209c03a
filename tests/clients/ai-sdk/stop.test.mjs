// 4. Stop through `POST /api/chat/{chatId}/stop` (the AI SDK's own `stop()` only closes the connection): the stream
// ends with `abort`, the upstream request is closed, and a resume afterwards gives the partial message.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { SDKS, assistants, demoModel, makeChat, native, stopChat, textOf, unique, until, upstream } from './lib.mjs'

for (const [name, sdk] of Object.entries(SDKS)) {
  test(`${name}: a stopped answer ends with abort and keeps its partial text`, async () => {
    const id = unique('stop')
    // Far longer than the test waits for (400 tokens, 40 ms apart): it can only end by the stop.
    const chat = makeChat(sdk, { id, body: { model: demoModel({ tokens: '400', delay_ms: '40' }) } })
    const sending = chat.sendMessage({ text: 'Go on and on' })
    await until(() => textOf(chat.lastMessage).length > 0 && chat.lastMessage.role === 'assistant', 'the first words')

    const stop = await stopChat(id)
    assert.equal(stop.status, 202)
    const stopped = await stop.json()
    assert.equal(stopped.id, chat.seen.streamIds[0])
    await sending
    assert.equal(chat.status, 'ready', String(chat.error))
    assert.equal(chat.seen.chunks.at(-1).type, 'abort')

    const record = await upstream(stopped.id)
    assert.ok(record.client_disconnected, 'the worker closed the upstream request')
    const kept = (await native(`/api/streams/${stopped.id}/message`)).message.content
    assert.equal(textOf(chat.lastMessage), kept)
    // What the server kept is what the upstream had sent (up to the tokens in flight when it was closed).
    assert.ok(record.sent_text.startsWith(kept) && !record.finished, JSON.stringify([kept, record.sent_text]))

    // A reload after the stop: the partial message, once.
    const resumed = makeChat(sdk, { id, messages: chat.messages.slice(0, -1) })
    await resumed.resumeStream()
    assert.equal(assistants(resumed).length, 1)
    assert.equal(textOf(resumed.lastMessage), kept)
    assert.equal(resumed.seen.chunks.at(-1).type, 'abort')
  })
}
