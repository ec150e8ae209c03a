// A retried attempt, with the real worker: it is paused (SIGSTOP) mid-answer until its lease lapses and an API
// process retries the answer as attempt 2. The client's response ends with `retrying: ...`, the app's `onError`
// resumes (the README's recipe), and the message ends as the new attempt's answer, once; a resume after a reload
// (ai 5.0.0 too) replays only the new attempt.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { SDKS, assistants, demoModel, makeChat, native, records, textOf, unique, until, upstream } from './lib.mjs'

const WORKER = Number(process.env.CHATRELAY_WORKER_PID)

test('a worker lost mid-answer: the message is the retried attempt, never the dead one', async () => {
  assert.ok(WORKER > 0, 'CHATRELAY_WORKER_PID is not set: run this through tests/test_ai_sdk_clients.py')
  const id = unique('reset')
  // 150 tokens, 30 ms apart: still running when the worker is paused, whatever the machine's load.
  const model = demoModel({ tokens: '150', delay_ms: '30', seed: '9' })
  const errors = []
  const chat = makeChat(SDKS['ai 6.0.326'], {
    id,
    body: { model },
    onError: (error) => {
      errors.push(error.message)
      if (!error.message.startsWith('retrying:')) return
      // The recipe: once this request has wound down, drop the answer's dead attempt and resume the stream.
      setTimeout(() => {
        if (chat.lastMessage?.role === 'assistant') chat.messages = chat.messages.slice(0, -1)
        void chat.resumeStream()
      }, 0)
    },
  })
  const sending = chat.sendMessage({ text: 'Tell me something long' })
  await until(() => chat.lastMessage?.role === 'assistant' && textOf(chat.lastMessage).length > 0, 'the first words')
  const streamId = chat.seen.streamIds[0]

  process.kill(WORKER, 'SIGSTOP')
  try {
    // The lease lapses after 5 s without renewal; a lease check (every 2 s) retries the answer.
    const retried = async () => (await native(`/api/streams/${streamId}`)).attempt === 2
    await until(retried, 'the answer to be retried as attempt 2', 120_000)
  } finally {
    process.kill(WORKER, 'SIGCONT')
  }
  await sending
  await until(
    () => chat.status === 'ready' && chat.lastMessage?.metadata?.finishReason === 'stop',
    'the retried answer to end',
    120_000,
  )

  assert.equal(errors.length, 1, errors.join('\n'))
  assert.ok(errors[0].startsWith('retrying: '), errors[0])
  const ended = chat.seen.chunks.findIndex((c) => c.type === 'error')
  assert.deepEqual(chat.seen.chunks[ended - 1], { type: 'data-chatrelay-reset', data: { attempt: 2 }, transient: true })
  assert.equal((await records(streamId)).length, 2, 'the upstream was asked twice')
  const record = await upstream(streamId) // the last request: attempt 2's
  assert.equal(assistants(chat).length, 1)
  assert.equal(textOf(chat.lastMessage), record.sent_text)

  // A reload after the retry: only the new attempt is replayed (ai 5.0.0 adds a replay to what it has, so its
  // history leaves the answer out, as the docs' pattern does).
  const reloaded = makeChat(SDKS['ai 5.0.0'], { id, messages: chat.messages.slice(0, -1) })
  await reloaded.resumeStream()
  assert.equal(assistants(reloaded).length, 1)
  assert.equal(textOf(reloaded.lastMessage), record.sent_text)
  assert.ok(!reloaded.seen.chunks.some((c) => c.type === 'error' || c.type.startsWith('data-')))
})
