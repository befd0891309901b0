import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/metrics.js';
import { instrumentChat } from '../../src/providers/instrumented.js';
import { OfflineCompanion } from '../../src/providers/llm/offline.js';
import { type ChatRequest, LlmError } from '../../src/providers/llm/types.js';

const companion = new OfflineCompanion();

function request(userMessage: string, signal?: AbortSignal): ChatRequest {
  return {
    messages: [{ role: 'user', content: userMessage }],
    context: {
      personaName: 'Mia',
      personaTraits: { tone: 'playful', catchphrase: 'Onwards!' },
      userMessage,
      profile: [{ content: 'User is a nurse from Lisbon', score: 0.8 }],
      relationship: [],
    },
    signal,
  };
}

describe('OfflineCompanion.stream', () => {
  it('streams exactly what complete answers, in several deltas', async () => {
    for (const message of ['Hi Mia', 'What is my job?', 'I had a long day.']) {
      const deltas: string[] = [];
      const streamed = await companion.stream(request(message), (text) => deltas.push(text));
      expect(streamed).toEqual(await companion.complete(request(message)));
      expect(deltas.length).toBeGreaterThan(1);
      expect(deltas.join('')).toBe(streamed.content);
    }
  });

  it('yields to the event loop between deltas', async () => {
    let ticks = 0;
    let running = true;
    const tick = () => {
      ticks++;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    const seen: number[] = [];
    await companion.stream(request('Hi Mia'), () => seen.push(ticks));
    running = false;
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('stops at the next delta when aborted mid-stream', async () => {
    const controller = new AbortController();
    const deltas: string[] = [];
    const outcome = await companion
      .stream(request('Hi Mia', controller.signal), (text) => {
        deltas.push(text);
        if (deltas.length === 2) controller.abort();
      })
      .catch((err: unknown) => err);
    expect(outcome).toBeInstanceOf(LlmError);
    expect((outcome as LlmError).retryable).toBe(false);
    expect(deltas).toHaveLength(2);
  });

  it('is timed like complete when instrumented', async () => {
    const metrics = new Metrics();
    const chat = instrumentChat(companion, metrics);
    const deltas: string[] = [];
    const reply = await chat.stream(request('Hi Mia'), (text) => deltas.push(text));
    expect(deltas.join('')).toBe(reply.content);
    const aborted = chat.stream(request('Hi Mia', AbortSignal.abort()), () => {});
    await expect(aborted).rejects.toBeInstanceOf(LlmError);
    const text = await metrics.registry.metrics();
    for (const outcome of ['ok', 'error']) {
      expect(text).toContain(
        `companion_provider_call_duration_seconds_count{provider="offline",operation="chat",outcome="${outcome}"} 1`,
      );
    }
  });
});
