// 6. Strangers: another owner's chat id gives 204 (resume) or 404 (stop), never the stream; the same id is theirs.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { ADMIN, SDKS, demoModel, makeChat, stopChat, textOf, unique, upstream } from './lib.mjs'

const sdk = SDKS['ai 6.0.326']

test('another owner (a browser session, an admin key) cannot resume or stop a chat', async () => {
  const id = unique('private')
  const owner = makeChat(sdk, { id, body: { model: demoModel({ tokens: '30', delay_ms: '2' }) } })
  await owner.sendMessage({ text: 'mine' })
  const record = await upstream(owner.seen.streamIds[0])
  assert.equal(textOf(owner.lastMessage), record.sent_text)

  for (const [who, headers] of [
    ['an anonymous session', {}],
    ['an admin key', ADMIN],
  ]) {
    const stranger = makeChat(sdk, { id, messages: owner.messages.slice(0, 1), headers })
    await stranger.resumeStream()
    assert.deepEqual(stranger.seen.statuses, [204], who)
    assert.deepEqual(stranger.seen.chunks, [], who)
    assert.equal(stranger.messages.length, 1, who)
    assert.equal((await stopChat(id, headers)).status, 404, who)
  }

  // The same chat id is simply the stranger's own chat; the owner's stays as it was.
  const other = makeChat(sdk, { id, headers: ADMIN, body: { model: demoModel({ tokens: '5', delay_ms: '2' }) } })
  await other.sendMessage({ text: 'theirs' })
  assert.notEqual(other.seen.streamIds[0], owner.seen.streamIds[0])
  const again = makeChat(sdk, { id, messages: owner.messages.slice(0, 1) })
  await again.resumeStream()
  assert.deepEqual(again.seen.streamIds, owner.seen.streamIds)
  assert.equal(textOf(again.lastMessage), record.sent_text)
})
