// 3. Reasoning and tool calls: the parts and the tool inputs are the upstream's; `onToolCall` + `addToolResult` and
// the automatic follow-up POST reach the upstream as `tool` messages, and the answer continues the same message.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { SDKS, assistants, demoModel, makeChat, records, textOf, unique, until, upstream } from './lib.mjs'

const TOOLS = [
  { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } },
  { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } },
]
// What the app's tools answer: an object (sent as JSON) and a string (sent as it is).
const OUTPUTS = { get_weather: { temp: 21, sky: 'clear 🙂' }, get_time: '09:30' }

for (const [name, sdk] of Object.entries(SDKS)) {
  test(`${name}: reasoning comes as a reasoning part before the text`, async () => {
    const model = demoModel({ scene: 'reasoning', tokens: '40', delay_ms: '2', seed: '3' })
    const chat = makeChat(sdk, { id: unique('reasoning'), body: { model } })
    await chat.sendMessage({ text: 'Think first' })
    const record = await upstream(chat.seen.streamIds[0])
    assert.equal(chat.status, 'ready', String(chat.error))
    assert.ok(record.sent_reasoning.length > 0)
    assert.deepEqual(
      chat.lastMessage.parts.map((p) => p.type),
      ['step-start', 'reasoning', 'text'],
    )
    assert.equal(textOf(chat.lastMessage, 'reasoning'), record.sent_reasoning)
    assert.equal(textOf(chat.lastMessage), record.sent_text)
  })

  test(`${name}: two parallel tool calls, their results, and the answer after them`, async () => {
    const model = demoModel({ scene: 'parallel_tools', delay_ms: '2' })
    const calls = []
    const id = unique('tools')
    const chat = makeChat(sdk, {
      id,
      body: { model, tools: TOOLS },
      sendAutomaticallyWhen: sdk.lastAssistantMessageIsCompleteWithToolCalls,
      onToolCall: ({ toolCall }) => {
        calls.push(toolCall)
        // Not awaited: the chat runs this after the chunk that called it (the AI SDK's docs say the same).
        void chat.addToolResult({
          tool: toolCall.toolName,
          toolCallId: toolCall.toolCallId,
          output: OUTPUTS[toolCall.toolName],
        })
      },
    })
    await chat.sendMessage({ text: 'Weather and time in Paris?' })
    await until(
      async () => chat.seen.streamIds.length === 2 && chat.status === 'ready' && (await records(chat.seen.streamIds[1])).at(-1)?.finished,
      'the follow-up answer',
    )
    assert.equal(chat.error, undefined)
    const [first, second] = [await upstream(chat.seen.streamIds[0]), await upstream(chat.seen.streamIds[1])]

    // The tool parts carry the upstream's calls, whole.
    assert.deepEqual(
      calls.map((c) => [c.toolCallId, c.toolName, c.input]),
      first.sent_tool_calls.map((c) => [c.id, c.name, JSON.parse(c.arguments)]),
    )
    assert.equal(assistants(chat).length, 1, 'the follow-up continues the same message')
    const message = chat.lastMessage
    const toolParts = message.parts.filter((p) => p.type.startsWith('tool-'))
    assert.deepEqual(
      toolParts.map((p) => [p.type, p.state, p.toolCallId, p.input, p.output]),
      first.sent_tool_calls.map((c) => [
        `tool-${c.name}`,
        'output-available',
        c.id,
        JSON.parse(c.arguments),
        OUTPUTS[c.name],
      ]),
    )

    // The follow-up reached the upstream as Chat Completions tool messages.
    const sent = second.body.messages
    assert.deepEqual(sent[0], { role: 'user', content: 'Weather and time in Paris?' })
    assert.equal(sent[1].role, 'assistant')
    assert.equal(sent[1].content, first.sent_text)
    assert.deepEqual(
      sent[1].tool_calls.map((c) => [c.id, c.type, c.function.name, JSON.parse(c.function.arguments)]),
      first.sent_tool_calls.map((c) => [c.id, 'function', c.name, JSON.parse(c.arguments)]),
    )
    assert.deepEqual(
      sent.slice(2),
      first.sent_tool_calls.map((c) => ({
        role: 'tool',
        tool_call_id: c.id,
        content: typeof OUTPUTS[c.name] === 'string' ? OUTPUTS[c.name] : JSON.stringify(OUTPUTS[c.name]),
      })),
    )
    assert.deepEqual(second.body.tools, TOOLS)
    assert.ok(second.sent_text.includes('call_demo_time_2: 09:30'), second.sent_text)
    // Both steps' text, in order, in the one message.
    assert.equal(textOf(message), first.sent_text + second.sent_text)
    assert.equal(message.parts.filter((p) => p.type === 'step-start').length, 2)

    // A reload after (or during) the follow-up: its replay rebuilds the tool step too, and calls no tool again.
    // (ai 5.0.0 adds a replay to the message it has: its history leaves the answer out, as the docs' pattern does.)
    const history = sdk === SDKS['ai 5.0.0'] ? chat.messages.slice(0, -1) : chat.messages
    const resumed = makeChat(sdk, { id, messages: history, onToolCall: () => assert.fail('a replay called a tool') })
    await resumed.resumeStream()
    const parts = (m) => m.parts.map((p) => [p.type, p.text, p.state, p.toolCallId, p.input, p.output])
    assert.equal(assistants(resumed).length, 1)
    assert.equal(resumed.lastMessage.id, message.id)
    assert.deepEqual(parts(resumed.lastMessage), parts(message))
  })
}
