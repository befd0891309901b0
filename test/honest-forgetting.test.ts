import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromThisTurn } from '../src/memory/provenance.js';
import { isExtractionRequest } from './fakes/extraction.js';
import {
  type ChatBody,
  type OpenRouterFake,
  startOpenRouterFake,
} from './fakes/openrouter-fake.js';
import { startVoyageFake, type VoyageFake } from './fakes/voyage-fake.js';
import { createTestContext, dataOf, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';
import { fakeProviderEnv } from './helpers/providers.js';

/**
 * Issue 13, "forgetting is honest": after a forget, the next extraction still reads the older
 * messages as context, and a model that returns a forgotten fact from them must not write it
 * back. Only the new turn is a source. The model is the OpenRouter fake, scripted per user
 * message; what it answers ignores the prompt on purpose (a disobedient model).
 */

type Item = { content: string; evidence?: string };
/** What the model answers to the extraction of each user message. */
const scripts = new Map<string, Item[]>();
/** The data block of each extraction request, by user message. */
const seen = new Map<string, string>();
/** The persona's reply to each user message. */
const replies = new Map<string, string>();

function userMessageOf(body: ChatBody): string {
  const text = body.messages.at(-1)?.content ?? '';
  return isExtractionRequest(body)
    ? (/<user_message>\n([\s\S]*?)\n<\/user_message>/.exec(text)?.[1] ?? '')
    : text;
}

function respond(body: ChatBody): string {
  const message = userMessageOf(body);
  if (!isExtractionRequest(body)) return replies.get(message) ?? 'I see.';
  seen.set(message, body.messages[1]?.content ?? '');
  const memories = (scripts.get(message) ?? []).map((m) => ({
    category: 'fact',
    layer: 'PROFILE',
    confidence: 0.9,
    ...m,
  }));
  return JSON.stringify({ memories });
}

let t: TestContext;
let voyage: VoyageFake;
let openrouter: OpenRouterFake;

beforeAll(async () => {
  voyage = await startVoyageFake();
  openrouter = await startOpenRouterFake({ responder: respond });
  t = await createTestContext({ env: fakeProviderEnv({ voyage, openrouter }) });
});
afterAll(async () => {
  await t?.close();
  await openrouter?.close();
  await voyage?.close();
});

async function profile(token: string): Promise<string[]> {
  const res = await t.gql<{ profileMemories: { edges: { node: { content: string } }[] } }>(
    '{ profileMemories(first: 50) { edges { node { content } } } }',
    {},
    token,
  );
  return dataOf(res)
    .profileMemories.edges.map((e) => e.node.content)
    .sort();
}

describe('after a forget, older messages are context, not a source', () => {
  it('a forgotten fact the model finds in an earlier message is not written back', async () => {
    const user = await t.newUser();
    const personas = await personaIds(t, user.token);
    const { sessionId } = await startChat(t, user.token, personas.mira ?? '');
    const lisbon = { content: 'User lives in Lisbon', evidence: 'I live in Lisbon' };

    scripts.set('I live in Lisbon and I work as a nurse', [
      lisbon,
      { content: 'User works as a nurse', evidence: 'I work as a nurse' },
    ]);
    await send(t, user.token, sessionId, 'I live in Lisbon and I work as a nurse');
    await t.drainJobs();
    expect(await profile(user.token)).toEqual(['User lives in Lisbon', 'User works as a nurse']);

    const forgot = await t.gql(
      'mutation { forgetMemories(input: { everything: true }) { deletedCount } }',
      {},
      user.token,
    );
    expect(dataOf(forgot)).toEqual({ forgetMemories: { deletedCount: 2 } });

    // The model returns the forgotten facts again, quoting the earlier message as evidence
    // (or giving none), next to one new fact this turn really states.
    scripts.set('I like green tea', [
      lisbon,
      { content: 'User is a nurse' },
      { content: 'User likes green tea', evidence: 'I like green tea' },
    ]);
    await send(t, user.token, sessionId, 'I like green tea');
    await t.drainJobs();
    // The job did read the forgotten words as context ...
    expect(seen.get('I like green tea')).toMatch(
      /<prior_messages>[\s\S]*I live in Lisbon and I work as a nurse[\s\S]*<\/prior_messages>/,
    );
    // ... and wrote back only what the new turn says.
    expect(await profile(user.token)).toEqual(['User likes green tea']);
  });

  it('context still explains the new turn: a "yes" to the persona’s question is a source', async () => {
    const user = await t.newUser();
    const personas = await personaIds(t, user.token);
    const { sessionId } = await startChat(t, user.token, personas.mira ?? '');
    replies.set('I just got back from a trip', 'Welcome back! Was it to Kyoto?');
    await send(t, user.token, sessionId, 'I just got back from a trip');
    scripts.set('Yes, it was wonderful', [
      { content: 'User travelled to Kyoto', evidence: 'Yes, it was wonderful' },
    ]);
    await send(t, user.token, sessionId, 'Yes, it was wonderful');
    await t.drainJobs();
    expect(await profile(user.token)).toEqual(['User travelled to Kyoto']);
  });

  it('the extraction prompt marks the earlier messages as context only', () => {
    const data = [...seen.values()][0] ?? '';
    expect(data).toMatch(/context only \(never a source of memories\):\n\n<prior_messages>/);
  });
});

describe('fromThisTurn', () => {
  const turn = {
    userMessage: "Honestly, I'm exhausted... my shift at the hospital ran late",
    reply: 'I promise to remind you to rest tonight.',
    context: ['I live in Lisbon', 'I moved there in 2019', 'Do you have a cat?'],
    personaName: 'Mira',
  };
  const kept = (items: { content: string; evidence?: string }[]) =>
    fromThisTurn(
      items.map((i) => ({ ...i, category: 'FACT' as const, layer: 'PROFILE' as const })),
      turn,
    ).kept.map((c) => c.content);

  it('keeps evidence found in this turn, word for word, ignoring case and punctuation', () => {
    expect(
      kept([
        { content: 'User works hospital shifts', evidence: 'my shift at the HOSPITAL ran late!' },
        { content: 'Mira promised to remind User to rest', evidence: 'I promise to remind you' },
        { content: 'User is exhausted', evidence: "I'm exhausted ... ran late" },
      ]),
    ).toEqual([
      'User works hospital shifts',
      'Mira promised to remind User to rest',
      'User is exhausted',
    ]);
  });

  it('drops evidence from the context, evidence not in the turn, and partial-word matches', () => {
    expect(
      kept([
        { content: 'User lives in Lisbon', evidence: 'I live in Lisbon' },
        { content: 'User has a cat', evidence: 'Do you have a cat?' },
        { content: 'User is a nurse', evidence: 'I am a nurse' },
        { content: 'User hospitalised', evidence: 'hospit' },
        { content: 'User said nothing', evidence: '...' },
      ]),
    ).toEqual([]);
  });

  it('without evidence, drops a memory whose words come from the context only, keeps one with a word of this turn', () => {
    expect(
      kept([
        { content: 'User lives in Lisbon' },
        { content: 'User moved in 2019' },
        { content: "User's hospital shift ran late" },
        { content: 'User and Mira are friends' },
        { content: 'User lives near the hospital' },
      ]),
    ).toEqual([
      "User's hospital shift ran late",
      'User and Mira are friends',
      'User lives near the hospital',
    ]);
  });
});
