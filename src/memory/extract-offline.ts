import { resolveDatePhrase } from '../time/resolve.js';
import { startOfLocalDay, zoneOrUtc } from '../time/zone.js';
import type {
  ExtractionInput,
  MemoryCandidate,
  MemoryCategory,
  MemoryExtractor,
  MemoryLayer,
} from './types.js';

/**
 * Rule-based memory extraction: the zero-config fallback. The LLM extractor is the production
 * path; this one exists so memory works with no API key, and it errs towards writing nothing
 * rather than something wrong.
 *
 * It reads only the user's message (the persona's reply is the model talking, not a fact)
 * and keeps first-person statements: "I…", "my…", "we…", "you…" ("you" is the persona).
 * Known limits of a rule table:
 * - English only; sentences split on . ! ? and newlines ("Dr. Smith" splits wrongly).
 * - A sentence ending in "?" is skipped whole, even "I'm a nurse, and you?".
 * - Clauses split on ";" and on "and/but/so" before "I/we", nowhere else.
 * - Verb agreement covers regular verbs and a list of irregular pasts; ambiguous forms
 *   ("I read") take the present. "I'd" is "would" unless a participle follows ("had").
 * - "we" always means the user and the persona, even in "we have an exam" (the user's class).
 * - Dates are resolved (src/time/resolve.ts) into `occurredAt` against the message's local
 *   date in the user's zone; the content keeps the words as said ("tomorrow").
 * - Only identical statements (ignoring case and punctuation) count as already known;
 *   near-duplicates are left to the embedding dedup that runs after extraction.
 */
export class OfflineExtractor implements MemoryExtractor {
  readonly provider = 'offline';

  async extract(input: ExtractionInput): Promise<MemoryCandidate[]> {
    const persona = input.personaName.trim() || 'the companion';
    const seen = new Set(input.existing.map((memory) => normalise(memory.content)));
    const zone = zoneOrUtc(input.timeZone);
    const candidates: MemoryCandidate[] = [];
    for (const clause of clauses(input.userMessage)) {
      const found = toCandidate(clause, persona);
      if (!found) continue;
      const when = resolveDatePhrase(clause, input.messageTime, zone);
      // A plain statement with a day ("I have a recital on Friday") is an event.
      const candidate: MemoryCandidate = when
        ? {
            ...found,
            category: found.category === 'FACT' ? 'EVENT' : found.category,
            occurredAt: startOfLocalDay(when.date, zone),
          }
        : found;
      for (const c of [candidate, ...corrections(candidate, input.existing)]) {
        const key = normalise(c.content);
        if (seen.has(key)) continue;
        seen.add(key);
        candidates.push(c);
      }
    }
    return candidates;
  }
}

const MOVED = /^User (?:just |finally |recently )?(?:moved|relocated|has moved) to (.+)$/;
const LIVES_IN = /^User (?:lives|is living) in /i;

/**
 * The one correction a rule can make safely: "I moved to Porto" replaces a stored "User lives
 * in Lisbon" (the old one is superseded, so recall stops finding it). Others need the LLM.
 */
function corrections(
  candidate: MemoryCandidate,
  existing: ExtractionInput['existing'],
): MemoryCandidate[] {
  const place = MOVED.exec(candidate.content)?.[1];
  if (!place || candidate.layer !== 'PROFILE') return [];
  const old = existing.find((m) => m.layer === 'PROFILE' && LIVES_IN.test(m.content));
  if (!old) return [];
  return [
    {
      content: `User lives in ${place}`,
      category: 'FACT',
      layer: 'PROFILE',
      confidence: candidate.confidence ?? 0.8,
      supersedes: old.id,
    },
  ];
}

const MAX_CONTENT = 500;

/**
 * A case-insensitive pattern for any of the whitespace-separated items; `_` stands for a
 * space inside a phrase, and items may use regex syntax (`parents?`).
 */
function words(list: string, before = '\\b', after = '\\b'): RegExp {
  const items = list
    .trim()
    .split(/\s+/)
    .map((item) => item.replaceAll('_', ' '));
  return new RegExp(`${before}(?:${items.join('|')})${after}`, 'i');
}

const RELATIVES = `wife husband partner boyfriend girlfriend fianc[eé]e? mother mom mum father dad
  parents? sister brother siblings? friends? son daughter kids? child children baby grandma grandpa
  grandmother grandfather grandparents aunt uncle cousin niece nephew boss coworkers? colleagues?
  roommate neighbou?r dog cat pets? puppy kitten`;

/** First match wins, so the order is the priority. FACT when nothing matches. */
const CATEGORY_RULES: ReadonlyArray<readonly [MemoryCategory, RegExp]> = [
  // "My friend is a nurse" is about the friend, never a fact about the user.
  ['RELATION', words(RELATIVES, '^(?:my|our) (?:\\w+ )?')],
  [
    'EMOTION',
    words(`feel feels feeling felt sad happy anxious stressed excited nervous worried lonely scared
      afraid angry upset depressed overwhelmed frustrated tired exhausted grateful proud hopeful
      heartbroken bored relieved miss`),
  ],
  [
    'PREFERENCE',
    words("likes? loves? hates? prefers? enjoys? adore favou?rite can't_stand fan_of"),
  ],
  [
    'EVENT',
    words(`went visited told said met moved started finished promised yesterday today tonight
      tomorrow ago will 'll going_to gonna interview appointment exam trip wedding birthday
      graduat\\w* (?:next|last|this)_(?:week|weekend|month|year|night|summer|winter|spring|fall)`),
  ],
  // A regular past right after the subject ("we joked", "I visited"), but not "I need".
  ['EVENT', words('\\w+[^e]ed', '\\b(?:i|we|you) (?:just |finally |recently )?')],
  ['RELATION', words(RELATIVES, '\\b(?:my|our) (?:\\w+ )?')],
  ['RELATION', words(RELATIVES, '\\bi have (?:a|an|two|three|\\d+) (?:\\w+ )?')],
];

/** Clauses that carry nothing worth remembering, tested after leading noise is stripped. */
const SKIP_RULES: ReadonlyArray<readonly [reason: string, RegExp]> = [
  [
    'question',
    words(
      `what why how when where who which whose do does did can could would will is are am
      should shall`,
      '^',
    ),
  ],
  ['hypothetical', words('if unless suppose imagine pretend i_wonder i_wish')],
  ['thanks', words('thanks thank_you', '^')],
  [
    'filler',
    words(
      `i'm_(?:fine|good|ok|okay|alright|great|well|back|here|sure|not_sure|sorry|kidding|joking)
      i_(?:see|know|agree|guess|understand|mean|suppose|think_so|get_it) i_don't_know me_too
      you're_(?:right|welcome)`,
      '^',
      '(?:,? (?:too|then|now|thanks|thank you))?$',
    ),
  ],
];

const GREETING = words(
  'hi hello hey hiya howdy good_(?:morning|afternoon|evening)',
  '^',
  '(?:(?: there)?(?: \\w+)?\\s*[,!.]\\s*| )',
);
const INTERJECTION = words(
  'well so oh ah um uh actually honestly also anyway btw by_the_way ok okay yeah yes no and but',
  '^',
  '\\b,? ',
);
const TIME_LEAD = words(
  'yesterday today tonight tomorrow recently lately (?:last|next|this)_\\w+ on_\\w+day',
  '^',
  ',? ',
);
const PERSON_START = words(
  "i i'm i've i'd i'll my me we we're we've we'll we'd our you you're you've you'll you'd your",
  '^',
);
const ABOUT_PERSONA = words(
  "you you're you've you'll you'd your yours yourself we we're we've we'll we'd us our ours",
);
const HEDGE = words('think guess maybe probably kind_of sort_of might');

function toCandidate(raw: string, persona: string): MemoryCandidate | null {
  const clause = stripLeadingNoise(raw.replace(/\b(?:you know|you see|i mean),?\s*/gi, ''));
  if (!PERSON_START.test(clause.replace(TIME_LEAD, ''))) return null;
  const plain = clause.replace(/\bi am\b/i, "i'm").replace(/\byou are\b/i, "you're");
  if (SKIP_RULES.some(([, rule]) => rule.test(plain))) return null;
  const category = CATEGORY_RULES.find(([, rule]) => rule.test(clause))?.[0] ?? 'FACT';
  const layer: MemoryLayer = ABOUT_PERSONA.test(clause) ? 'RELATIONSHIP' : 'PROFILE';
  const content = truncate(capitalise(rewriteThirdPerson(clause, persona)));
  // Fewer than three words even after rewriting ("User ran") is a fragment, not a memory.
  if (content.split(' ').length < 3) return null;
  const confidence = (layer === 'RELATIONSHIP' ? 0.7 : 0.8) - (HEDGE.test(clause) ? 0.1 : 0);
  return { content, category, layer, confidence: Math.round(confidence * 100) / 100 };
}

function clauses(message: string): string[] {
  const text = message.replace(/[’‘]/g, "'").replace(/[ \t]+/g, ' ');
  const result: string[] = [];
  for (const sentence of text.split(/(?<=[.!?])\s+|\n+/)) {
    if (sentence.trim().endsWith('?')) continue;
    let pending = '';
    for (const part of sentence.split(/\s*;\s*|,? (?:and|but|so) (?=(?:i|i'm|i've|we|we're)\b)/i)) {
      const clause = `${pending}${part.trim().replace(/[.!,;:\s]+$/, '')}`;
      // "My sister and I went…" was cut after a bare noun phrase: glue it to what follows.
      pending = /^(?:my|our) \w+(?: \w+)?$/i.test(clause) ? `${clause} and ` : '';
      if (pending === '' && clause !== '') result.push(clause);
    }
  }
  return result;
}

function stripLeadingNoise(clause: string): string {
  let text = clause.trim();
  for (let previous = ''; previous !== text; ) {
    previous = text;
    text = text.replace(GREETING, '').replace(INTERJECTION, '').trim();
  }
  return text;
}

const wordSet = (list: string) => new Set(list.trim().split(/\s+/));
const ADVERBS = wordSet(`really also just still always usually often never sometimes recently
  actually absolutely totally definitely even only mostly truly already currently now finally too`);
/** Modals and irregular pasts: no agreement ("User went", not "User wents"). */
const NO_AGREEMENT = wordSet(`can could will would shall should may might must did had was used
  went got made met saw told said took gave came ran ate bought thought felt left lost found began
  grew knew wrote spent sent kept heard sold slept won became forgot taught brought fell flew drove
  broke chose paid built understood sat stood swam sang hurt put let cut quit set`);
const AGREEMENT: Record<string, string> = {
  am: 'is',
  are: 'is',
  were: 'was',
  have: 'has',
  do: 'does',
  go: 'goes',
  "don't": "doesn't",
  "haven't": "hasn't",
  "aren't": "isn't",
  "weren't": "wasn't",
};
/** After these (or first in the clause) "you" is the subject: "I think you are funny". */
const SUBJECT_LEADS = wordSet(
  'that when because since and but so think hope know wish said guess believe how why feel',
);

/** Pronoun rewrites; `agree` means the verb right after it takes the third person. */
function pronouns(persona: string): Record<string, { to: string; agree?: boolean }> {
  const both = `User and ${persona}`;
  return {
    i: { to: 'User', agree: true },
    "i'm": { to: 'User is' },
    "i've": { to: 'User has' },
    "i'll": { to: 'User will' },
    "i'd": { to: 'User would' },
    me: { to: 'User' },
    mine: { to: "User's" },
    myself: { to: 'themselves' },
    we: { to: both },
    "we're": { to: `${both} are` },
    "we've": { to: `${both} have` },
    "we'll": { to: `${both} will` },
    "we'd": { to: `${both} would` },
    us: { to: both },
    our: { to: `${both}'s` },
    ours: { to: `${both}'s` },
    ourselves: { to: both },
    "you're": { to: `${persona} is` },
    "you've": { to: `${persona} has` },
    "you'll": { to: `${persona} will` },
    "you'd": { to: `${persona} would` },
    your: { to: `${persona}'s` },
    yours: { to: `${persona}'s` },
    yourself: { to: persona },
  };
}

/** "I'm a nurse and I love my dog" → "User is a nurse…", "User loves their dog". */
export function rewriteThirdPerson(clause: string, persona: string): string {
  const table = pronouns(persona);
  const words = clause.split(' ');
  let agree = false;
  let userNamed = false;
  return words
    .map((token, index) => {
      const [, pre = '', word = '', post = ''] = /^([^\w']*)([\w']*)(.*)$/.exec(token) ?? [];
      const lower = word.toLowerCase();
      const previous = (words[index - 1] ?? '').toLowerCase().replace(/[^\w']/g, '');
      const next = (words[index + 1] ?? '').toLowerCase().replace(/[^\w']/g, '');
      let to = word;
      if (agree && ADVERBS.has(lower)) return token;
      if (agree) {
        to = thirdPerson(word);
        agree = false;
      } else if (lower === 'my') {
        // The second "my" in a clause about the user reads better as "their".
        to = userNamed ? 'their' : "User's";
        userNamed = true;
      } else if (lower === 'you') {
        to = persona;
        agree = index === 0 || SUBJECT_LEADS.has(previous);
      } else if (lower === "i'd" && /^(?:been|gone|seen|done|had|known|\w+[^e]ed)$/.test(next)) {
        to = 'User had';
      } else {
        const swap = table[lower];
        if (swap) {
          to = swap.to;
          agree = swap.agree ?? false;
          userNamed ||= to.startsWith('User');
        }
      }
      return `${pre}${to}${post}`;
    })
    .join(' ');
}

function thirdPerson(verb: string): string {
  const lower = verb.toLowerCase();
  const irregular = AGREEMENT[lower];
  if (irregular) return irregular;
  // "-ed" is a past ("visited"), but "-eed" is not ("need", "feed").
  if (NO_AGREEMENT.has(lower) || !/^[a-z]+$/.test(lower) || /[^e]ed$/.test(lower)) return verb;
  if (/(?:s|sh|ch|x|z|o)$/.test(lower)) return `${verb}es`;
  if (/[^aeiou]y$/.test(lower)) return `${verb.slice(0, -1)}ies`;
  return `${verb}s`;
}

/** Case- and punctuation-insensitive identity, for "already known". */
function normalise(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function truncate(text: string): string {
  if (text.length <= MAX_CONTENT) return text;
  return text.slice(0, MAX_CONTENT).replace(/\s+\S*$/, '');
}
