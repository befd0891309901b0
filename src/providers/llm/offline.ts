import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  type ChatCompletion,
  type ChatModel,
  type ChatRequest,
  LlmError,
  type RecalledFact,
} from './types.js';

/**
 * The zero-config chat model: no network, no weights. It cannot converse, but it answers in
 * the persona's voice and visibly uses what recall found, so the memory pipeline can be seen
 * working end to end. Deterministic: phrasing varies with a hash of the message, never with
 * time or randomness, so the same request always gets the same reply.
 */
export const OFFLINE_COMPANION_MODEL = 'offline-companion-v1';

export const COMPANION_TONES = ['warm', 'playful', 'calm', 'witty'] as const;
export type CompanionTone = (typeof COMPANION_TONES)[number];

/**
 * The persona traits this model reads; other keys are ignored, invalid values fall back.
 * - `tone`: one of COMPANION_TONES (default 'warm'), picks the phrasing.
 * - `catchphrase`: string of at most 120 characters (default none), closes every reply.
 * - `emoji`: string of at most 8 characters (default none), ends the opening line.
 */
export interface CompanionTraits {
  tone: CompanionTone;
  catchphrase: string | null;
  emoji: string | null;
}

export function readTraits(raw: Record<string, unknown>): CompanionTraits {
  const text = (value: unknown, max: number) =>
    typeof value === 'string' && value.trim() !== '' && value.length <= max ? value.trim() : null;
  const tone = COMPANION_TONES.find((t) => t === raw.tone) ?? 'warm';
  return { tone, catchphrase: text(raw.catchphrase, 120), emoji: text(raw.emoji, 8) };
}

type MessageKind = 'greeting' | 'question' | 'statement';
type Lines = Record<MessageKind | 'unknown' | 'followUp', readonly string[]>;

const VOICES: Record<CompanionTone, Lines> = {
  warm: {
    greeting: ["Hi, it's {name}! It's so good to hear from you.", 'Hello again, {name} here.'],
    question: ["That's a good question.", 'Let me think about that with you.'],
    statement: ['Thank you for telling me.', 'I hear you.'],
    unknown: ["I don't know much about you yet, and I'd love to.", "Tell me more; I'll keep it."],
    followUp: ['How are you feeling today?', "What's on your mind?"],
  },
  playful: {
    greeting: ['Hey hey, {name} here!', 'Look who showed up! {name} reporting for duty.'],
    question: ['Ooh, a question! Let me think.', 'Quiz time? I love it.'],
    statement: ['Ha, noted!', 'Oh, I like where this is going.'],
    unknown: ["You're still a bit of a mystery to me. Spill!"],
    followUp: ["What's the next adventure?", 'So, what mischief today?'],
  },
  calm: {
    greeting: ['Hello. {name} here, glad you came by.'],
    question: ["Let's take that slowly.", "That's worth a moment's thought."],
    statement: ["I'm listening.", 'Thank you for sharing that.'],
    unknown: ['Tell me about yourself whenever you are ready.'],
    followUp: ['What would help you most right now?', 'How is your day unfolding?'],
  },
  witty: {
    greeting: ['Well, look who it is. {name}, at your service.'],
    question: ['A question! My favourite kind of sentence.'],
    statement: ['Noted, filed, and cherished.', 'Go on, I was hoping you would say that.'],
    unknown: ['My memory of you is a blank page. We should fix that.'],
    followUp: ['What else should I know?', 'Surprise me: what happened today?'],
  },
};

const PROFILE_LINES = ['You told me {memory}.', 'I remember {memory}.'];

export class OfflineCompanion implements ChatModel {
  readonly provider = 'offline';
  readonly model = OFFLINE_COMPANION_MODEL;

  /**
   * The reply of `complete`, word by word (each word with the whitespace before it). Yields to
   * the event loop between words, without real delays, so subscribers see a stream and aborts
   * land between deltas.
   */
  async stream(request: ChatRequest, onDelta: (text: string) => void): Promise<ChatCompletion> {
    const completion = await this.complete(request);
    for (const word of completion.content.match(/\s*\S+/g) ?? []) {
      await nextTurn();
      throwIfAborted(request.signal);
      onDelta(word);
    }
    return completion;
  }

  async complete(request: ChatRequest): Promise<ChatCompletion> {
    throwIfAborted(request.signal);
    const { personaName, personaTraits, userMessage, profile, relationship } = request.context;
    const { daysSinceLastTalk, followUp } = request.context;
    const traits = readTraits(personaTraits);
    const voice = VOICES[traits.tone];
    const seed = fnv1a(userMessage);
    const pick = (lines: readonly string[], salt: number) => lines[(seed + salt) % lines.length];
    const kind = classify(userMessage);

    const opener = (pick(voice[kind], 0) ?? '').replace('{name}', personaName);
    const parts = [traits.emoji ? `${opener} ${traits.emoji}` : opener];
    const since = sinceLine(daysSinceLastTalk);
    if (since) parts.push(since);
    const bestProfile = best(profile);
    const bestRelationship = best(relationship);
    if (bestProfile) {
      const memory = toSecondPerson(bestProfile.content, personaName);
      // "When did I tell you…?" is answered with the date the prompt gives each memory.
      parts.push(
        kind === 'question' && /^when\b/i.test(userMessage.trim()) && bestProfile.told
          ? `You told me ${memory} (${bestProfile.told}).`
          : (pick(PROFILE_LINES, 1) ?? '').replace('{memory}', memory),
      );
    }
    if (bestRelationship) parts.push(relationshipLine(bestRelationship.content, personaName));
    if (!bestProfile && !bestRelationship) parts.push(pick(voice.unknown, 2) ?? '');
    if (followUp) {
      // The due follow-up replaces the generic closing question: asked visibly, exactly once.
      const what = toSecondPerson(followUp.content, personaName);
      parts.push(
        `By the way, you told me ${what}${followUp.when ? ` (${followUp.when})` : ''}. How did it go?`,
      );
    } else if (kind !== 'question') {
      // After a question the memories are the answer; a follow-up question would dodge it.
      parts.push(pick(voice.followUp, 3) ?? '');
    }
    // A catchphrase the reply already says (e.g. "Tell me more?") would read as a stutter.
    const catchphrase = traits.catchphrase;
    if (catchphrase && !parts.some((part) => part.includes(catchphrase))) parts.push(catchphrase);

    const content = parts.filter((part) => part !== '').join(' ');
    // Word counts, not tokens: enough for the API to show usage; the model id says "offline".
    const promptWords = request.messages.reduce((sum, m) => sum + countWords(m.content), 0);
    return {
      content,
      model: this.model,
      promptTokens: promptWords || countWords(userMessage),
      completionTokens: countWords(content),
    };
  }
}

/** Greets by the gap since the last talk; nothing within a day or on a first talk. */
function sinceLine(days: number | undefined): string | null {
  if (days === undefined || days < 2) return null;
  if (days < 7) return `It's been ${days} days since we last talked.`;
  const weeks = Math.floor(days / 7);
  return weeks < 9
    ? `It's been ${weeks === 1 ? 'a week' : `${weeks} weeks`} since we last talked. I missed you!`
    : "It's been a long time since we last talked. I missed you!";
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new LlmError('Offline completion aborted', false, { cause: signal.reason });
  }
}

function classify(message: string): MessageKind {
  const text = message.trim().toLowerCase();
  if (/^(hi|hello|hey|hiya|howdy|good (morning|afternoon|evening))\b/.test(text)) return 'greeting';
  const asks = /^(what|why|how|when|where|who|which|do|does|did|can|could|is|are|am|should)\b/;
  return text.endsWith('?') || asks.test(text) ? 'question' : 'statement';
}

/** Highest score wins; the stable order of recall breaks ties. */
function best(facts: readonly RecalledFact[]): RecalledFact | undefined {
  let top: RecalledFact | undefined;
  for (const fact of facts) {
    if (fact.content.trim() === '' || !Number.isFinite(fact.score)) continue;
    if (!top || fact.score > top.score) top = fact;
  }
  return top;
}

function relationshipLine(content: string, personaName: string): string {
  const memory = toSecondPerson(content, personaName);
  const name = escapeRegExp(personaName);
  if (new RegExp(`^${name}(?!\\w)`).test(content.trim())) return `You once told me ${memory}.`;
  const past = /\b(\w+ed|was|were|had|did|went|told|said|made|took|gave|came|saw|met|got)\b/i;
  return past.test(content)
    ? `I still remember when ${memory}.`
    : `I haven't forgotten that ${memory}.`;
}

const ADVERB = String.raw`((?:always|also|still|often|usually|really|never|sometimes|just)\s+)?`;
/** A name after one of these (or first) is a subject: "that Mia tells" → "that I tell". */
const SUBJECT_LEAD = String.raw`(^|\b(?:that|when|because|and|but|so|how|why|thinks?|said)\s+)`;
const USER = String.raw`(?:\bUser|\b[Tt]he user)(?!\w)`;

type Rule = readonly [RegExp, (...groups: string[]) => string];

/**
 * Turns a stored memory ("User is a nurse", "User and Mia joked about Mia's puns") into what
 * the persona says to the user ("you're a nurse", "we joked about my puns"). Order matters:
 * the persona rules run first so "User and Mia" never becomes "you and Mia".
 */
export function toSecondPerson(memory: string, personaName: string): string {
  const n = `(?<!\\w)${escapeRegExp(personaName)}(?!\\w)`;
  const pair = `(?:${USER} and ${n}|${n} and ${USER})`;
  const rules: Rule[] = [
    [new RegExp(`${pair}['’]s\\b`, 'g'), () => 'our'],
    [new RegExp(`${SUBJECT_LEAD}${pair}`, 'g'), (_, lead) => `${lead}we`],
    [new RegExp(pair, 'g'), () => 'us'],
    [new RegExp(`${n}['’]s\\b`, 'g'), () => 'my'],
    [new RegExp(`${n} is\\b`, 'g'), () => "I'm"],
    [new RegExp(`${SUBJECT_LEAD}${n}\\s+${ADVERB}([\\w']+)`, 'g'), subject('I')],
    [new RegExp(n, 'g'), () => 'me'],
    [new RegExp(`${USER}['’]s\\b`, 'g'), () => 'your'],
    [new RegExp(`${USER} is\\b`, 'g'), () => "you're"],
    [new RegExp(`()${USER}\\s+${ADVERB}([\\w']+)`, 'g'), subject('you')],
    [new RegExp(USER, 'g'), () => 'you'],
  ];
  let text = memory.trim().replace(/[.!?\s]+$/, '');
  // "User loves their dog": with the user as subject, "their" is the user's own.
  const userIsSubject = new RegExp(`^${USER}(?!['’]s)`).test(text);
  for (const [pattern, replace] of rules) text = text.replace(pattern, replace);
  if (userIsSubject)
    text = text.replace(/\btheir\b/g, 'your').replace(/\bthemselves\b/g, 'yourself');
  text = text.replace(/^(Yesterday|Today|Last|Next|This|Recently|When|The|A|An)\b/, (w) =>
    w.toLowerCase(),
  );
  return text.length > 240 ? `${text.slice(0, 240).replace(/\s+\S*$/, '')}…` : text;
}

const IRREGULAR: Record<'I' | 'you', Record<string, string>> = {
  I: { is: 'am', was: 'was', "isn't": 'am not', "wasn't": "wasn't" },
  you: { is: 'are', was: 'were', "isn't": "aren't", "wasn't": "weren't" },
};
const SHARED: Record<string, string> = { has: 'have', does: 'do', goes: 'go', "doesn't": "don't" };

/** Rewrites "<third-person subject> [adverb] verb" as "I/you [adverb] verb" with agreement. */
function subject(pronoun: 'I' | 'you') {
  return (_: string, lead = '', adverb = '', verb = ''): string =>
    `${lead}${pronoun} ${adverb}${baseForm(verb, pronoun)}`;
}

function baseForm(verb: string, pronoun: 'I' | 'you'): string {
  const lower = verb.toLowerCase();
  const irregular =
    IRREGULAR[pronoun][lower] ?? SHARED[lower] ?? (lower === "hasn't" ? "haven't" : null);
  if (irregular) return irregular;
  if (lower.length > 4 && /[^aeiou]ies$/.test(lower)) return `${verb.slice(0, -3)}y`;
  if (/(ss|sh|ch|x|z)es$/.test(lower)) return verb.slice(0, -2);
  if (/[^su']s$/.test(lower)) return verb.slice(0, -1);
  return verb;
}

function countWords(text: string): number {
  return text.split(/\s+/).filter((word) => word !== '').length;
}

/** 32-bit FNV-1a: a stable, dependency-free way to vary phrasing per message. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
