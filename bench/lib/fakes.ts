/**
 * The project's HTTP fakes of Voyage and OpenRouter (test/fakes), started on 127.0.0.1 for a
 * benchmark, answering at once. The chat model echoes; the extraction model (a distinct model
 * name) answers with `memoriesPerExtraction` well-formed, mutually dissimilar memories per turn,
 * so the worker has real writes to do (embedding batch, dedup, rows, history).
 */
import { type OpenRouterFake, startOpenRouterFake } from '../../test/fakes/openrouter-fake.js';
import { startVoyageFake, type VoyageFake } from '../../test/fakes/voyage-fake.js';
import { mulberry32 } from './common.js';

export const CHAT_MODEL = 'bench/chat';
export const EXTRACTION_MODEL = 'bench/extractor';
export const VOYAGE_MODEL = 'voyage-3-lite';

const WORDS = (
  'apple river guitar lisbon nurse marathon ramen thunder puppy garden violin bakery ' +
  'mountain ocean pottery chess sushi tango kayak library comet falcon maple harbor ' +
  'lantern meadow quartz saffron tundra volcano walnut yoga zebra anchor bamboo cactus ' +
  'dolphin ember fjord glacier hammock igloo jasmine kiwi lagoon mango nectar orchid ' +
  'pepper quilt raven sequoia tulip umbrella velvet willow yarn zucchini basil cobalt ' +
  'denim fennel ginger hazel indigo juniper kelp lemon mint nutmeg olive paprika'
).split(' ');

function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export interface Fakes {
  voyage: VoyageFake;
  openrouter: OpenRouterFake;
  /** Server environment pointing the real clients at the fakes. */
  env: Record<string, string>;
  /** Memories the extraction model returns per turn from now on. */
  setMemoriesPerExtraction(n: number): void;
  /** Forget recorded requests (the fakes keep every request; long runs would grow). */
  trim(): void;
  close(): Promise<void>;
}

export async function startFakes(options: { memoriesPerExtraction: number }): Promise<Fakes> {
  let perExtraction = options.memoriesPerExtraction;
  const voyage = await startVoyageFake();
  const openrouter = await startOpenRouterFake({
    responder: (body) => {
      const last = body.messages.findLast((m) => m.role === 'user')?.content ?? '';
      if (body.model !== EXTRACTION_MODEL) return `echo: ${last.slice(0, 200)}`;
      const random = mulberry32(hash(last));
      const pick = () => WORDS[Math.floor(random() * WORDS.length)] as string;
      const memories = Array.from({ length: perExtraction }, (_, i) => ({
        content: `The user enjoys ${pick()} ${pick()} and ${pick()} ${pick()}`,
        category: 'PREFERENCE',
        layer: i % 2 === 0 ? 'PROFILE' : 'RELATIONSHIP',
        confidence: 0.9,
      }));
      return JSON.stringify({ memories });
    },
  });
  return {
    voyage,
    openrouter,
    env: {
      EMBEDDINGS_PROVIDER: 'voyage',
      VOYAGE_API_KEY: voyage.apiKey,
      VOYAGE_BASE_URL: voyage.url,
      VOYAGE_MODEL,
      LLM_PROVIDER: 'openrouter',
      OPENROUTER_API_KEY: openrouter.apiKey,
      OPENROUTER_BASE_URL: openrouter.url,
      OPENROUTER_CHAT_MODEL: CHAT_MODEL,
      OPENROUTER_EXTRACTION_MODEL: EXTRACTION_MODEL,
    },
    setMemoriesPerExtraction(n) {
      perExtraction = n;
    },
    trim() {
      voyage.requests.length = 0;
      openrouter.requests.length = 0;
    },
    close: async () => {
      await voyage.close();
      await openrouter.close();
    },
  };
}
