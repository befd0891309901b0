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
 * working end to end:
 * - it greets by how long it has been: a first talk introduces the persona, a greeting later
 *   the same day is a "hello again", days later it says how long it has been;
 * - a question about the user is answered with the recalled memory that answers it ("Where do
 *   I live?" → the home, not the job), or an honest "you haven't told me yet";
 * - its phrasing varies with the turn (a hash of the message and of how long the conversation
 *   is), never with time or randomness, so the same request always gets the same reply; and it
 *   never ends two replies in a row with the same closing line (it reads its previous reply in
 *   the request's messages), the persona's catchphrase included.
 * It stays labelled offline: provider "offline", model OFFLINE_COMPANION_MODEL.
 */
export const OFFLINE_COMPANION_MODEL = 'offline-companion-v1';

export const COMPANION_TONES = ['warm', 'playful', 'calm', 'witty'] as const;
export type CompanionTone = (typeof COMPANION_TONES)[number];

/**
 * The persona traits this model reads; other keys are ignored, invalid values fall back.
 * - `tone`: one of COMPANION_TONES (default 'warm'), picks the phrasing.
 * - `catchphrase`: string of at most 120 characters (default none), one of the lines that may
 *   close a reply (never two replies in a row).
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
type Lines = Record<
  MessageKind | 'first' | 'again' | 'unknown' | 'notYet' | 'followUp',
  readonly string[]
>;

const VOICES: Record<CompanionTone, Lines> = {
  warm: {
    first: [
      "Hi, I'm {name}! It's lovely to meet you.",
      "Hello! I'm {name}, and I'm glad you're here.",
    ],
    again: ['Hello again!', "Hi again, it's {name}.", 'Welcome back!'],
    greeting: [
      "Hi, it's {name}! It's so good to hear from you.",
      'Hello, {name} here. Good to see you.',
    ],
    question: ["That's a good question.", 'Let me think about that with you.'],
    statement: ['Thank you for telling me.', 'I hear you.', "I'm glad you told me."],
    unknown: [
      "I don't know much about you yet, and I'd love to.",
      "Tell me about you; I'll keep it.",
    ],
    notYet: ["I don't think you've told me that yet.", "Hmm, you haven't told me that yet."],
    followUp: ['How are you feeling today?', "What's on your mind?", 'How has your day been?'],
  },
  playful: {
    first: ["Hey hey, I'm {name}! New friend unlocked.", "Oh hi! I'm {name}. Let's be friends."],
    again: ['Back already? Yay!', 'Hey again!'],
    greeting: ['Hey hey, {name} here!', 'Look who showed up! {name} reporting for duty.'],
    question: ['Ooh, a question! Let me think.', 'Quiz time? I love it.'],
    statement: ['Ha, noted!', 'Oh, I like where this is going.'],
    unknown: ["You're still a bit of a mystery to me. Spill!"],
    notYet: ["You haven't told me that one yet!", 'No idea yet: you never said!'],
    followUp: ["What's the next adventure?", 'So, what mischief today?', 'Got any gossip for me?'],
  },
  calm: {
    first: ["Hello. I'm {name}; it's good to meet you."],
    again: ['Hello again.', 'Welcome back.'],
    greeting: ['Hello. {name} here, glad you came by.'],
    question: ["Let's take that slowly.", "That's worth a moment's thought."],
    statement: ["I'm listening.", 'Thank you for sharing that.'],
    unknown: ['Tell me about yourself whenever you are ready.'],
    notYet: ["You haven't told me that yet."],
    followUp: ['What would help you most right now?', 'How is your day unfolding?'],
  },
  witty: {
    first: ["Well, hello. I'm {name}, and you're new here."],
    again: ['Back so soon? I knew you would be.', 'And we meet again.'],
    greeting: ['Well, look who it is. {name}, at your service.'],
    question: ['A question! My favourite kind of sentence.'],
    statement: ['Noted, filed, and cherished.', 'Go on, I was hoping you would say that.'],
    unknown: ['My memory of you is a blank page. We should fix that.'],
    notYet: ["That one you haven't told me. Yet."],
    followUp: ['What else should I know?', 'Surprise me: what happened today?'],
  },
};

const PROFILE_LINES = ['You told me {memory}.', 'I remember {memory}.'];
const ANSWER_LINES = ['You told me {memory}.', 'If I remember right, {memory}.'];

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
    // Seeded by the turn: the message and how far into the conversation it comes.
    const seed = fnv1a(`${request.messages.length}\u0000${userMessage}`);
    const pick = (lines: readonly string[], salt: number) => lines[(seed + salt) % lines.length];
    const kind = classify(userMessage);
    const previous = lastReply(request.messages);

    const parts = [
      opening(voice, kind, daysSinceLastTalk, previous, pick).replace('{name}', personaName),
    ];
    if (traits.emoji) parts[0] = `${parts[0]} ${traits.emoji}`;
    const since = sinceLine(daysSinceLastTalk);
    if (since) parts.push(since);
    const aboutUser = kind === 'question' && ABOUT_USER.test(userMessage);
    if (aboutUser) {
      // A question about the user: the memory that answers it, or an honest "not yet".
      const answer = answering(userMessage, profile) ?? answering(userMessage, relationship);
      if (answer) {
        const memory = toSecondPerson(answer.content, personaName);
        parts.push(
          /^when\b/i.test(userMessage.trim()) && answer.told
            ? `You told me ${memory} (${answer.told}).`
            : (pick(ANSWER_LINES, 1) ?? '').replace('{memory}', memory),
        );
      } else {
        parts.push(pick(voice.notYet, 2) ?? '');
      }
    } else if (kind !== 'question') {
      // A statement hears back a memory on its topic ("I have an interview" → the job); only
      // a greeting, with nothing to be on topic with, gets the best-scored one.
      const bestProfile =
        kind === 'greeting' ? best(profile, userMessage) : answering(userMessage, profile, true);
      const bestRelationship = best(relationship, userMessage);
      if (bestProfile) {
        const memory = toSecondPerson(bestProfile.content, personaName);
        parts.push((pick(PROFILE_LINES, 1) ?? '').replace('{memory}', memory));
      }
      if (bestRelationship) parts.push(relationshipLine(bestRelationship.content, personaName));
      // Nothing recalled at all: invite the user to tell more, once, not on every turn.
      const invite = pick(voice.unknown, 2) ?? '';
      const nothing = profile.length === 0 && relationship.length === 0;
      if (nothing && !voice.unknown.some((l) => previous?.includes(l))) {
        parts.push(invite);
      }
    }
    if (followUp) {
      // The due follow-up replaces the generic closing question: asked visibly, exactly once.
      const what = toSecondPerson(followUp.content, personaName);
      // A memory written with its date ("… on 4 December 2026") needs no second one.
      const when = followUp.when && !/\b\d{4}\b/.test(what) ? ` (${followUp.when})` : '';
      parts.push(`By the way, you told me ${what}${when}. How did it go?`);
    } else {
      // After a question the answer is the point: no question back, only the catchphrase.
      const pool = [
        ...(kind === 'question' ? [] : voice.followUp),
        ...(traits.catchphrase ? [traits.catchphrase] : []),
      ];
      const closing = pickClosing(pool, previous, seed);
      if (closing) parts.push(closing);
    }

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

/**
 * The first line. A first talk introduces the persona (and acknowledges a first statement or
 * question); a greeting is answered by the gap: "hello again" the same day (or mid-conversation),
 * a warm greeting after a day or more (the since-line then says how long).
 */
function opening(
  voice: Lines,
  kind: MessageKind,
  days: number | undefined,
  previous: string | null,
  pick: (lines: readonly string[], salt: number) => string | undefined,
): string {
  if (days === undefined && previous === null) {
    // Meeting the user, and still hearing what they said first ("I hear you.").
    const heard = kind === 'greeting' ? '' : ` ${pick(voice[kind], 1) ?? ''}`;
    return `${pick(voice.first, 0) ?? ''}${heard}`;
  }
  if (kind !== 'greeting') return pick(voice[kind], 0) ?? '';
  return pick(days === undefined || days < 1 ? voice.again : voice.greeting, 0) ?? '';
}

/** The assistant's last message in the request (the conversation so far), if any. */
function lastReply(messages: ChatRequest['messages']): string | null {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m?.role === 'assistant') return m.content.trim();
  }
  return null;
}

/** A closing line from the pool, never the one the previous reply ended with. */
function pickClosing(
  pool: readonly string[],
  previous: string | null,
  seed: number,
): string | null {
  const allowed = pool.filter((line) => !previous?.endsWith(line));
  return allowed.length === 0 ? null : (allowed[seed % allowed.length] ?? null);
}

/** "Where do I live?", "What's my job?", "Do you remember my sister?": about the user. */
const ABOUT_USER = /\b(?:i|i'm|me|my|mine|myself)\b/i;

/**
 * Topics a question can ask about, each with the words that ask and the words of a memory
 * that answer. "Where do I live?" asks `home`; "User lives in Lisbon" answers it, "User works
 * as a vet in Porto" does not.
 */
const TOPICS: ReadonlyArray<{ asks: RegExp; answers: RegExp }> = [
  {
    asks: /\b(?:live|living|home|hometown|house|flat|apartment|moved?|city|where am i from|from)\b/i,
    answers: /\b(?:lives?|living|moved|relocated|home|from|grew up)\b/i,
  },
  {
    asks: /\b(?:job|work|works|working|career|profession|occupation|what do i do|for a living)\b/i,
    answers:
      /\b(?:works?|working|job|career|is an? (?:\w+ )?(?:\w+(?:ist|er|or|ian|ant|ent)|nurse|vet|chef|doctor|student|pilot|cook)\b)/i,
  },
  { asks: /\b(?:name|called)\b/i, answers: /\b(?:name|called)\b/i },
  { asks: /\b(?:old|age|birthday|born)\b/i, answers: /\b(?:\d+|years old|birthday|born)\b/i },
  {
    asks: /\b(?:like|love|hate|favou?rite|enjoy|prefer|food|music|eat)\b/i,
    answers:
      /\b(?:likes?|loves?|hates?|favou?rite|enjoys?|prefers?|adores?|can't stand|dislikes?)\b/i,
  },
  {
    asks: /\b(?:pets?|dog|cat)\b/i,
    answers: /\b(?:pets?|dogs?|cats?|puppy|kitten)\b/i,
  },
];

const QUESTION_NOISE = new Set(
  `what what's whats where when who whom whose which why how do does did is are am was were can
  could would should will you your yours i i'm me my mine myself the a an to of in on at for and
  or tell remember know again about that this`.split(/\s+/),
);

/**
 * The recalled memory that answers a question, or undefined: a memory on the topic the
 * question asks about wins, else one sharing a distinctive word with it ("my sister" →
 * "User's sister Lucia…"); recall's score breaks ties.
 */
function answering(
  question: string,
  facts: readonly RecalledFact[],
  skipEchoes = false,
): RecalledFact | undefined {
  const topics = TOPICS.filter((t) => t.asks.test(question));
  const asked = stems(question).filter((w) => !QUESTION_NOISE.has(w));
  let top: { fact: RecalledFact; points: number } | undefined;
  for (const fact of facts) {
    if (fact.content.trim() === '' || !Number.isFinite(fact.score)) continue;
    if (skipEchoes && echoes(fact, question)) continue;
    const content = fact.content.replace(/^User\b/, '');
    const words = new Set(stems(content));
    const points =
      2 * topics.filter((t) => t.answers.test(content)).length +
      asked.filter((w) => words.has(w)).length;
    if (points === 0) continue;
    if (!top || points > top.points || (points === top.points && fact.score > top.fact.score)) {
      top = { fact, points };
    }
  }
  return top?.fact;
}

function stems(text: string): string[] {
  return (text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? []).map((w) =>
    w.length > 4 ? w.replace(/(?:'s|ing|ed|es|s)$/, '') : w.replace(/'s$/, ''),
  );
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

/**
 * Highest score wins (the stable order of recall breaks ties), skipping what this very message
 * says: echoing "you love hiking" right after "I love hiking" is not remembering.
 */
function best(facts: readonly RecalledFact[], message: string): RecalledFact | undefined {
  let top: RecalledFact | undefined;
  for (const fact of facts) {
    if (fact.content.trim() === '' || !Number.isFinite(fact.score)) continue;
    if (echoes(fact, message)) continue;
    if (!top || fact.score > top.score) top = fact;
  }
  return top;
}

/** Whether the memory only repeats the message ("I love hiking" → "User loves hiking"). */
function echoes(fact: RecalledFact, message: string): boolean {
  const said = new Set(stems(message));
  const words = stems(fact.content.replace(/^User\b/, '')).filter((w) => w.length > 3);
  return words.length > 0 && words.every((w) => said.has(w));
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
