// The benchmark's peer: Vercel's `resumable-stream` in front of an OpenAI-compatible model, used as the
// library's README shows, on plain `node:http` (the README's Next.js route handlers, without Next.js).
//
//   POST /chat {id, model, messages}   resumableStream(id, makeStream): the first call for an id is the
//                                      producer (it calls the model and keeps every chunk in memory); a
//                                      repeated call follows the running answer instead of asking twice
//   GET  /chat/:id/stream?resumeAt=N   resumeExistingStream(id, N): the answer so far minus its first N
//                                      characters (UTF-16 code units of the SSE text), then the rest live;
//                                      404 if there is no such stream, 422 once it is done (as the README)
//   GET  /healthz
//
// The stream of strings is SSE text, one event per model token, as bench/naive.py frames it:
// `event: delta` / `data: {"text": ...}`, then `event: done` (or `event: error`).
//
// Environment: REDIS_URL, OPENAI_BASE_URL, PORT, PEER_KEY_PREFIX (the library's `keyPrefix`).
import http from "node:http";
import { once } from "node:events";

import OpenAI from "openai";
import { createClient } from "redis";
import { createResumableStreamContext } from "resumable-stream";

// The demo upstream keys its record of each request (and its emit timestamps) by this header.
const CHAT_ID_HEADER = "X-Chatrelay-Stream-Id";
const MAX_BODY = 1 << 20;

const publisher = createClient({ url: process.env.REDIS_URL });
const subscriber = createClient({ url: process.env.REDIS_URL });
await Promise.all([publisher.connect(), subscriber.connect()]);

const streamContext = createResumableStreamContext({
  waitUntil: null, // a long-running server, not a serverless function (the library's own advice)
  keyPrefix: process.env.PEER_KEY_PREFIX,
  publisher,
  subscriber,
});
const openai = new OpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: "bench", maxRetries: 0 });

const frame = (event, data) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

async function* answer(id, model, messages) {
  // Errors end the stream as an event: a stream that errors would reject inside the library's reader
  // loop, which has no handler for it, and take the process down.
  let finishReason = "stop";
  try {
    const stream = await openai.chat.completions.create(
      { model, messages, stream: true },
      { headers: { [CHAT_ID_HEADER]: id } },
    );
    for await (const chunk of stream) {
      for (const choice of chunk.choices ?? []) {
        if (choice.delta?.content) yield frame("delta", { text: choice.delta.content });
        if (choice.finish_reason) finishReason = choice.finish_reason;
      }
    }
  } catch (error) {
    yield frame("error", { message: String(error) });
    return;
  }
  yield frame("done", { finish_reason: finishReason });
}

async function readJson(req) {
  const parts = [];
  let size = 0;
  for await (const part of req) {
    size += part.length;
    if (size > MAX_BODY) throw new Error("request body too large");
    parts.push(part);
  }
  return JSON.parse(Buffer.concat(parts).toString("utf8"));
}

function reply(res, status, text) {
  res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8" }).end(text);
}

// What `new Response(stream, {headers})` does in the README's route handlers.
async function sendStream(res, stream) {
  res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
  res.flushHeaders(); // as a Response does: the headers go before the first chunk, however late that is
  const reader = stream.getReader();
  // A reader that leaves cancels its copy; a producer's answer goes on (the library keeps reading it).
  res.on("close", () => reader.cancel().catch(() => {}));
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (value && !res.write(value)) await once(res, "drain");
  }
  res.end();
}

async function route(req, res) {
  const url = new URL(req.url, "http://peer");
  if (req.method === "POST" && url.pathname === "/chat") {
    const { id, model, messages } = await readJson(req);
    const stream = await streamContext.resumableStream(id, () => ReadableStream.from(answer(id, model, messages)));
    if (!stream) return reply(res, 422, "Stream is already done");
    return sendStream(res, stream);
  }
  const resume = url.pathname.match(/^\/chat\/([^/]+)\/stream$/);
  if (req.method === "GET" && resume) {
    const resumeAt = url.searchParams.get("resumeAt");
    const stream = await streamContext.resumeExistingStream(
      decodeURIComponent(resume[1]),
      resumeAt ? parseInt(resumeAt, 10) : undefined,
    );
    if (stream === undefined) return reply(res, 404, "No such stream");
    if (stream === null) return reply(res, 422, "Stream is already done");
    return sendStream(res, stream);
  }
  if (req.method === "GET" && url.pathname === "/healthz") return reply(res, 200, "ok");
  return reply(res, 404, "Not found");
}

const server = http.createServer((req, res) => {
  route(req, res).catch((error) => {
    if (!res.headersSent) reply(res, 500, String(error));
    else res.destroy(error);
  });
});
server.listen(Number(process.env.PORT), "127.0.0.1");

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => process.exit(0));
}
