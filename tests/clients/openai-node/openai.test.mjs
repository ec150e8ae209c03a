// The unmodified openai npm client (pinned in package.json) against chatrelay's /v1, on the real stack that
// tests/test_openai_node.py starts. Its responses.stream() accumulator is the strictest shape check there is: it
// throws on any event type it does not know and on item ids that do not match their output_index. Every text is
// compared with what the demo upstream recorded sending, byte for byte.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';

const { CHATRELAY_API_A: A, CHATRELAY_API_B: B, CHATRELAY_API_KEY: KEY, CHATRELAY_DEMO_URL: DEMO } = process.env;
const a = new OpenAI({ baseURL: `${A}/v1`, apiKey: KEY, maxRetries: 0 });
const b = new OpenAI({ baseURL: `${B}/v1`, apiKey: KEY, maxRetries: 0 });
const TOOLS = [
  { type: 'function', name: 'get_weather', parameters: { type: 'object', properties: {} } },
  { type: 'function', name: 'get_time', parameters: { type: 'object', properties: {} } },
];

const sid = (id) => id.replace(/^resp_|^chatcmpl-/, '');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what, check, seconds = 60) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

// What the demo upstream sent for a stream, once its request has ended.
async function upstream(streamId) {
  return until(`the upstream record of ${streamId}`, async () => {
    const records = await (await fetch(`${DEMO}/_demo/requests?stream_id=${streamId}`)).json();
    const last = records.at(-1);
    return last && (last.finished || last.client_disconnected) ? last : null;
  });
}

function said(events) {
  const out = { text: '', reasoning: '', calls: new Map() };
  for (const e of events) {
    if (e.type === 'response.output_text.delta') out.text += e.delta;
    else if (e.type === 'response.reasoning_text.delta') out.reasoning += e.delta;
    else if (e.type === 'response.output_item.added' && e.item.type === 'function_call')
      out.calls.set(e.item.id, { id: e.item.call_id, name: e.item.name, arguments: '' });
    else if (e.type === 'response.function_call_arguments.delta') out.calls.get(e.item_id).arguments += e.delta;
  }
  return { ...out, calls: [...out.calls.values()] };
}

async function readUntil(stream, lastSeq) {
  const seen = [];
  for await (const event of stream) {
    seen.push(event);
    if (event.sequence_number >= lastSeq) break; // drops the connection
  }
  return seen;
}

test('background stream read halfway, resumed with starting_after on the other replica', async () => {
  const model = 'chatrelay-demo?scene=reasoning&tokens=120&delay_ms=4';
  const first = await readUntil(await a.responses.create({ model, input: 'hi', background: true, stream: true }), 12);
  assert.equal(first[0].type, 'response.created');
  assert.deepEqual(
    first.map((e) => e.sequence_number),
    [...Array(13).keys()],
  );
  const id = first[0].response.id;
  const tail = [];
  for await (const event of await b.responses.retrieve(id, { stream: true, starting_after: 12 })) tail.push(event);
  assert.equal(tail[0].sequence_number, 13);
  assert.equal(tail.at(-1).type, 'response.completed');
  const record = await upstream(sid(id));
  const all = said([...first, ...tail]);
  assert.equal(all.text, record.sent_text);
  assert.equal(all.reasoning, record.sent_reasoning);
  assert.notEqual(record.sent_reasoning, '');
});

test('responses.stream() resumes through the strict accumulator: reasoning and parallel tool calls', async () => {
  for (const model of ['chatrelay-demo?scene=parallel_tools&delay_ms=3', 'chatrelay-demo?scene=reasoning&tokens=80']) {
    const created = await a.responses.create({ model, input: 'hi', background: true, stream: true, tools: TOOLS });
    const first = await readUntil(created, 10);
    const id = first[0].response.id;
    const helper = b.responses.stream({ response_id: id, starting_after: 10 });
    const rest = [];
    helper.on('event', (event) => rest.push(event));
    const final = await helper.finalResponse();
    assert.equal(rest[0].sequence_number, 11);
    const record = await upstream(sid(id));
    assert.equal(final.output_text, record.sent_text);
    assert.equal(said([...first, ...rest]).text, record.sent_text);
    const calls = final.output.filter((item) => item.type === 'function_call');
    assert.deepEqual(
      calls.map((c) => ({ id: c.call_id, name: c.name, arguments: c.arguments })),
      record.sent_tool_calls,
    );
    const reasoning = final.output.filter((item) => item.type === 'reasoning').map((item) => item.content[0].text);
    assert.deepEqual(reasoning, record.sent_reasoning ? [record.sent_reasoning] : []);
  }
});

test('polling retrieve until completed; cancel twice', async () => {
  const created = await a.responses.create({ model: 'chatrelay-demo?tokens=40&delay_ms=2', input: 'x', background: true });
  assert.equal(created.status, 'queued');
  const done = await until('completed', async () => {
    const r = await b.responses.retrieve(created.id);
    return ['queued', 'in_progress'].includes(r.status) ? null : r;
  });
  assert.equal(done.status, 'completed');
  assert.equal(done.output_text, (await upstream(sid(created.id))).sent_text);

  const long = await a.responses.create({ model: 'chatrelay-demo?tokens=5000&delay_ms=10', input: 'x', background: true });
  await until('output', async () => (await a.responses.retrieve(long.id)).output.length > 0);
  const cancelled = await a.responses.cancel(long.id);
  assert.equal(cancelled.status, 'cancelled');
  const again = await b.responses.cancel(long.id);
  assert.equal(again.status, 'cancelled');
  const record = await upstream(sid(long.id));
  assert.equal(record.client_disconnected, true);
  // cancel() returns the Response without the SDK's computed output_text (only create and retrieve add it).
  const kept = (await a.responses.retrieve(long.id)).output_text;
  assert.ok(kept.length > 0 && record.sent_text.startsWith(kept));
});

test('previous_response_id over three turns, and a function-call round trip', async () => {
  const model = 'chatrelay-demo?echo=1&delay_ms=1';
  const first = await a.responses.create({ model, input: 'one' });
  const second = await b.responses.create({ model, input: 'two', previous_response_id: first.id });
  const third = await a.responses.create({ model, input: 'three', previous_response_id: second.id });
  assert.equal(third.output_text, 'three');
  assert.deepEqual((await upstream(sid(third.id))).body.messages, [
    { role: 'user', content: 'one' },
    { role: 'assistant', content: 'one' },
    { role: 'user', content: 'two' },
    { role: 'assistant', content: 'two' },
    { role: 'user', content: 'three' },
  ]);

  const tools = 'chatrelay-demo?scene=parallel_tools&delay_ms=1';
  const asked = await a.responses.create({ model: tools, input: 'weather and time?', tools: TOOLS });
  const calls = asked.output.filter((item) => item.type === 'function_call');
  assert.equal(calls.length, 2);
  const answered = await a.responses.create({
    model: tools,
    tools: TOOLS,
    previous_response_id: asked.id,
    input: calls.map((c, i) => ({ type: 'function_call_output', call_id: c.call_id, output: `result ${i} ✓` })),
  });
  const record = await upstream(sid(answered.id));
  assert.equal(answered.output_text, record.sent_text);
  assert.deepEqual(
    record.body.messages.filter((m) => m.role === 'tool'),
    calls.map((c, i) => ({ role: 'tool', tool_call_id: c.call_id, content: `result ${i} ✓` })),
  );
});

test('chat.completions.stream() accumulates the upstream message; without stream the same message', async () => {
  const body = {
    model: 'chatrelay-demo?scene=parallel_tools&delay_ms=1',
    messages: [{ role: 'user', content: 'weather and time?' }],
    tools: TOOLS.map(({ type, ...fn }) => ({ type, function: fn })),
  };
  const final = await a.chat.completions.stream(body).finalChatCompletion();
  const record = await upstream(sid(final.id));
  const message = final.choices[0].message;
  const calls = (m) => m.tool_calls.map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments }));
  assert.equal(message.content, record.sent_text);
  assert.deepEqual(calls(message), record.sent_tool_calls);
  const whole = await b.chat.completions.create(body);
  assert.equal(whole.choices[0].message.content, message.content);
  assert.deepEqual(calls(whole.choices[0].message), calls(message));
});

test('errors: 401 for a wrong key, 404 for an unknown response', async () => {
  const wrong = new OpenAI({ baseURL: `${A}/v1`, apiKey: 'not-a-key-of-this-deployment', maxRetries: 0 });
  await assert.rejects(wrong.models.list(), OpenAI.AuthenticationError);
  await assert.rejects(a.responses.retrieve('resp_AAAAAAAAAAAAAAAAAAAAAA'), OpenAI.NotFoundError);
});
