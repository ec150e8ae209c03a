// 2. A reload mid-answer: the client drops its connection, a new chat object with the persisted history calls
// `resumeStream()`, and ends with exactly one assistant message equal to the upstream's text.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { API_B, SDKS, assistants, demoModel, makeChat, textOf, unique, until, upstream } from './lib.mjs'

// Long enough to still be running when the first words are in, on a busy machine: 120 tokens, 30 ms apart.
const SLOW = demoModel({ tokens: '120', delay_ms: '30', seed: '2' })

/** Send, wait for the first words, then drop the connection (`stop()` only aborts the fetch): a reload. */
async function reloadMidAnswer(sdk, id) {
  const chat = makeChat(sdk, { id, body: { model: SLOW } })
  const sending = chat.sendMessage({ text: 'Tell me a long story' })
  await until(() => textOf(chat.lastMessage).length > 0 && chat.lastMessage.role === 'assistant', 'the first words')
  await chat.stop()
  await sending
  return chat
}

for (const [name, sdk] of Object.entries(SDKS)) {
  test(`${name}: resumed from the persisted history without the answer in flight`, async () => {
    const id = unique('resume')
    const first = await reloadMidAnswer(sdk, id)
    const partial = textOf(first.lastMessage)
    const history = first.messages.slice(0, -1) // as the AI SDK's docs persist it: without the message in flight
    assert.deepEqual(
      history.map((m) => m.role),
      ['user'],
    )

    const resumed = makeChat(sdk, { id, messages: history, api: API_B }) // after a reload, on the other replica
    await resumed.resumeStream()
    const record = await upstream(first.seen.streamIds[0])
    assert.equal(resumed.status, 'ready', String(resumed.error))
    assert.equal(resumed.messages.length, 2)
    assert.equal(assistants(resumed).length, 1)
    assert.ok(record.sent_text.startsWith(partial), 'the first connection saw a prefix of the answer')
    assert.equal(textOf(resumed.lastMessage), record.sent_text)
    assert.equal(resumed.lastMessage.id, first.lastMessage.id, 'the same message id on every replay')
  })
}

// ai >= 5.0.233 / 6.0.250 start a resume from a fresh message and replace the one whose id the replay's `start`
// carries (vercel/ai "prevent resumeStream from duplicating the previous assistant message"); older versions, as
// ai 5.0.0, add the replay to the partial message, which is why the history above leaves it out.
test('ai 6.0.326: resumed with the partial answer kept in the history, which the replay replaces', async () => {
  const sdk = SDKS['ai 6.0.326']
  const id = unique('resume-kept')
  const first = await reloadMidAnswer(sdk, id)
  const kept = first.messages // the partial answer included, as a page that saves every update would have it
  assert.deepEqual(
    kept.map((m) => m.role),
    ['user', 'assistant'],
  )

  const resumed = makeChat(sdk, { id, messages: kept })
  await resumed.resumeStream()
  const record = await upstream(first.seen.streamIds[0])
  assert.equal(resumed.status, 'ready', String(resumed.error))
  assert.equal(resumed.messages.length, 2)
  assert.equal(textOf(resumed.lastMessage), record.sent_text)

  // And once more after the end (a reload just after it): the same final message, still one.
  const again = makeChat(sdk, { id, messages: resumed.messages })
  await again.resumeStream()
  assert.equal(again.messages.length, 2)
  assert.equal(textOf(again.lastMessage), record.sent_text)
})
