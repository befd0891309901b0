import { absoluteDate, type ResolvedDate, resolveDatePhrase } from '../time/resolve.js';
import { startOfLocalDay, zoneOrUtc } from '../time/zone.js';
import type {
  ExistingMemory,
  ExtractionInput,
  MemoryCandidate,
  MemoryCategory,
  MemoryExtractor,
  MemoryLayer,
} from './types.js';

/**
 * Rule-based memory extraction: the zero-config fallback. The LLM extractor is the production
 * path; this one exists so memory works with no API key, and it errs towards writing nothing
 * rather than something wrong. It writes memories the way the extraction prompt asks the LLM
 * to (src/memory/extraction-prompt.ts), so both read alike in recall:
 *
 * - Atomic: a message is split into sentences, and sentences into clauses at ";", and at a
 *   comma or "and/but/so/because" that starts a new subject ("I'm Dana, I work as a vet").
 *   "and he lives in Dubai" after "my brother is a pilot" names the brother again.
 * - Clean: greetings, fillers ("by the way", "actually", "honestly", "you know"), intensifiers
 *   ("really", "so", "literally") and a trailing vocative ("…, Mira") are dropped.
 * - Third person: "I" is "User", "my" is always "User's" ("my speech" is the user's, never an
 *   ambiguous "their"), "you" is the persona. "we" is the user and the persona only when the
 *   clause is about them (it names the persona, "you", talking, joking, "together"); otherwise
 *   it is the user's household ("we're moving house" → "User is moving house").
 * - Absolute dates: a relative date ("tomorrow", "next month", "last week", "on Friday",
 *   "three days ago") is resolved in the user's zone against the message's local date
 *   (src/time/resolve.ts) and rewritten as "on 4 December 2026", "in January 2027", … A day or
 *   week also becomes `occurredAt` (a dated statement is an EVENT, and may open a follow-up);
 *   a month or a year does not (the prompt's rule: never guess a day).
 * - Changes supersede: "I moved to Lisbon" also gives "User lives in Lisbon"; "I started a job
 *   at Google" / "I got a job as a nurse" / "I now work as…" also give "User works at/as …".
 *   Such a home or job fact supersedes the stored home or job it replaces (`supersedes` set to
 *   that memory's id among `existing`, as the LLM extractor does), so the job's write path
 *   retires the old one.
 * - Nothing from: questions (a tag like "…, and you?" is cut off first), hypotheticals ("if",
 *   "imagine", "I wonder", "maybe … will"), jokes (a "lol", "haha", "jk", "just kidding" or a
 *   laughing emoji in the sentence), role-play (a message with "*waves*"-style actions, "let's
 *   pretend", "roleplay", "in this story"), third parties' opinions ("my friend thinks …"),
 *   greetings, thanks and small talk; and never the persona's reply.
 *
 * Known limits of a rule table: English only; sentences split on . ! ? and newlines ("Dr. Smith"
 * splits wrongly); "there", "it", "that" are not resolved ("I loved the food there"); a list of
 * objects stays one memory ("I have two kids and a dog"); verb agreement covers regular verbs
 * and a list of irregular pasts; ambiguous forms ("I read") take the present. Only identical
 * statements (ignoring case and punctuation) count as already known; near-duplicates are left
 * to the embedding dedup that runs after extraction.
 */
export class OfflineExtractor implements MemoryExtractor {
  readonly provider = 'offline';

  async extract(input: ExtractionInput): Promise<MemoryCandidate[]> {
    const persona = input.personaName.trim() || 'the companion';
    if (ROLE_PLAY.test(input.userMessage)) return [];
    const seen = new Set(input.existing.map((memory) => normalise(memory.content)));
    const zone = zoneOrUtc(input.timeZone);
    const candidates: MemoryCandidate[] = [];
    for (const raw of clauses(input.userMessage)) {
      const clause = clean(raw, persona);
      if (!clause) continue;
      const when = resolveDatePhrase(clause, input.messageTime, zone);
      const found = toCandidate(withAbsoluteDate(clause, when), persona);
      if (!found) continue;
      const dated = when && when.precision !== 'month' && when.precision !== 'year';
      // A plain statement with a day ("I have a recital on Friday") is an event.
      const candidate: MemoryCandidate = when
        ? {
            ...found,
            category: found.category === 'FACT' ? 'EVENT' : found.category,
            ...(dated ? { occurredAt: startOfLocalDay(when.date, zone) } : {}),
          }
        : found;
      const state = stateFact(candidate, clause, when, input.existing);
      for (const c of state?.replaces
        ? [state.fact]
        : state
          ? [candidate, state.fact]
          : [candidate]) {
        const key = normalise(c.content);
        if (seen.has(key)) continue;
        seen.add(key);
        candidates.push(c);
      }
    }
    return candidates;
  }
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
    words(
      "likes? loves? hates? prefers? enjoys? adore dislikes? favou?rite can't_stand fan_of wants_to_be_called",
    ),
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

/** Clauses that carry nothing worth remembering, tested after the noise is stripped. */
const SKIP_RULES: ReadonlyArray<readonly [reason: string, RegExp]> = [
  [
    'question',
    words(
      `what why how when where who which whose do does did can could would will is are am
      should shall`,
      '^',
    ),
  ],
  ['hypothetical', words('if unless suppose imagine pretend i_wonder i_wish who_knows')],
  // "Maybe one day I'll be rich": a guess about the future, not a plan.
  ['speculation', /\b(?:maybe|perhaps)\b.*\b(?:will|'ll|would|'d)\b/i],
  // "My friend thinks Lisbon is overrated": someone else's opinion, not a fact about the user.
  [
    'third party',
    /^(?:my|our) (?:\w+ ){1,2}(?:thinks?|says?|believes?|reckons?|claims?|insists?|feels that)\b/i,
  ],
  ['thanks', words('thanks thank_you', '^')],
  [
    'filler',
    words(
      `i'm_(?:fine|good|ok|okay|alright|great|well|back|here|sure|not_sure|sorry|kidding|joking)
      i_(?:see|know|agree|guess|understand|mean|suppose|think_so|get_it) i_don't_know me_too
      you're_(?:right|welcome)`,
      '^',
      '(?:,? (?:too|then|now|thanks|thank you|again))?$',
    ),
  ],
];

/** The whole message is a scene, not the user's life: "*waves*", "let's pretend I'm…". */
const ROLE_PLAY =
  /\*[^*\n]{1,80}\*|\b(?:let'?s|lets) (?:pretend|play|imagine)\b|\brole-?\s?play|\bin (?:this|our|the) story\b|\bin character\b/i;
/** A sentence the user marks as not serious. */
const JOKE = /\b(?:lol|lmao|rofl|haha\w*|hehe\w*|jk|just (?:kidding|joking))\b|[😂🤣😜😝🤪🙃😆]/iu;

const GREETING = words(
  'hi hello hey hiya howdy good_(?:morning|afternoon|evening)',
  '^',
  '(?:(?: there)?(?: \\w+)?\\s*[,!.]\\s*| )',
);
const INTERJECTION = words(
  `well so oh ah um uh actually honestly frankly seriously also anyway btw by_the_way to_be_honest
  tbh ok okay yeah yes no and but please`,
  '^',
  '\\b,? ',
);
/** Filler anywhere in a clause; removed with the comma that set it off. */
const FILLER =
  /,?\s*\b(?:by the way|btw|you know|you see|i mean|to be honest|tbh|honestly|actually|basically|literally|anyway|though)\b,?(?=\s|$)/gi;
/** Words that only add emphasis: "I'm so nervous" says what "I'm nervous" says. */
const INTENSIFIER =
  /\b(?:really|truly|totally|absolutely|literally|basically|just|very|super)\s+(?!\s*(?:a|an|the|one)\b)|(?<=\b(?:i'm|am|is|are|was|feel|feels|felt|be|been|i) )so\s+(?=\w)/gi;
/** Pleasantries tacked on at the end: "…, nice to meet you", "…, everyone does". */
const TRAILING =
  /,?\s*(?:nice to meet you|pleased to meet you|everyone does|if that makes sense|haha|lol)\s*$/i;
/** A time word or phrase first in the clause ("Tomorrow I'm going…"). */
const TIME_LEAD = words(
  'yesterday today tonight tomorrow recently lately (?:last|next|this)_\\w+ on_\\w+day',
  '^',
  ',? ',
);
const PERSON_START = words(
  "i i'm i've i'd i'll my me we we're we've we'll we'd our you you're you've you'll you'd your call",
  '^',
);
const HEDGE = words('think guess maybe probably kind_of sort_of might');
/** A clause with these is about the user and the persona, so "we" includes the persona. */
const TALK = words(
  `you you're you've you'll you'd your yours yourself talk\\w* chat\\w* joked? jokes laugh\\w*
  discuss\\w* conversation\\w* together both_of_us`,
);
/** Words of a demonym or faith, not a name: "I'm Brazilian", "I'm Catholic". */
const NOT_A_NAME =
  /^(?:\w+(?:ese|ish|ian|can|ean|ic|ch|ian)|Thai|Greek|Dutch|Swiss|Czech|Iraqi|Israeli|Pakistani|Jewish|Muslim|Hindu|Sikh|Buddhist|Christian|Catholic|Vegan|Single|Married|Fine|Good|Back|Here|Sorry|Sure|Ok|Okay|Home|Done|In|On|Off|Not|So|Just|Also|Still|Now)$/;

function clean(raw: string, persona: string): string {
  let text = raw.replace(FILLER, '').replace(TRAILING, '');
  // A vocative: "You always make me laugh, Mira" / "Mira, I got the job".
  const name = escapeRegExp(persona);
  text = text.replace(new RegExp(`,\\s*(?:dear |my )?${name}\\s*$`, 'i'), '');
  text = text.replace(new RegExp(`^${name},\\s*`, 'i'), '');
  text = stripLeadingNoise(text);
  text = text.replace(INTENSIFIER, '').replace(/\s+/g, ' ');
  text = text.replace(/\bnow$/i, '').replace(/[.!,;:\s]+$/, '');
  return text.trim();
}

/** "Tomorrow I'm going hiking" → "I'm going hiking on 4 December 2026". */
function withAbsoluteDate(clause: string, when: ResolvedDate | null): string {
  if (!when) return clause;
  const words = absoluteDate(when);
  const at = clause.indexOf(when.phrase);
  if (at < 0) return clause;
  if (at === 0) {
    const rest = clause.slice(when.phrase.length).replace(/^,?\s*/, '');
    return `${rest} ${words}`;
  }
  return `${clause.slice(0, at)}${words}${clause.slice(at + when.phrase.length)}`;
}

function toCandidate(clause: string, persona: string): MemoryCandidate | null {
  if (!PERSON_START.test(clause.replace(TIME_LEAD, ''))) return null;
  const plain = clause.replace(/\bi am\b/i, "i'm").replace(/\byou are\b/i, "you're");
  if (SKIP_RULES.some(([, rule]) => rule.test(plain))) return null;
  const special = nameOrNickname(clause);
  if (special) return special;
  if (/^call\b/i.test(clause)) return null;
  const category = CATEGORY_RULES.find(([, rule]) => rule.test(clause))?.[0] ?? 'FACT';
  const withPersona =
    TALK.test(clause) || new RegExp(`\\b${escapeRegExp(persona)}\\b`, 'i').test(clause);
  const layer: MemoryLayer = withPersona ? 'RELATIONSHIP' : 'PROFILE';
  const content = truncate(capitalise(rewriteThirdPerson(clause, persona, withPersona)));
  // Fewer than three words even after rewriting ("User ran") is a fragment, not a memory.
  if (content.split(' ').length < 3) return null;
  const confidence = (layer === 'RELATIONSHIP' ? 0.7 : 0.8) - (HEDGE.test(clause) ? 0.1 : 0);
  return { content, category, layer, confidence: Math.round(confidence * 100) / 100 };
}

const NAME = String.raw`([A-Z\u00C0-\u00DE][\p{L}'-]*)`;
const INTRODUCTION = new RegExp(
  String.raw`^(?:i'm|i am|my name is|my name's)\s+${NAME}(?:\s+from\s+(.+))?$`,
  'iu',
);
const NICKNAME = new RegExp(String.raw`^call me\s+(?:by my (?:nick)?name,?\s+)?${NAME}$`, 'iu');

/** "I'm Dana" → "User's name is Dana" (+ "from Porto"); "Call me Jo" → how to address them. */
function nameOrNickname(clause: string): MemoryCandidate | null {
  const nickname = NICKNAME.exec(clause);
  if (nickname?.[1] && isCapitalised(nickname[1])) {
    return fact(`User wants to be called ${nickname[1]}`, 'PREFERENCE');
  }
  const intro = INTRODUCTION.exec(clause);
  const name = intro?.[1];
  if (!intro || !name || !isCapitalised(name) || NOT_A_NAME.test(name)) return null;
  // "My name is …" is always a name; after "I'm" the word must look like one.
  return fact(`User's name is ${name}`, 'FACT');
}

function isCapitalised(word: string): boolean {
  return /^\p{Lu}/u.test(word);
}

function fact(content: string, category: MemoryCategory): MemoryCandidate {
  return { content, category, layer: 'PROFILE', confidence: 0.8 };
}

/**
 * A move or a job change also states where the user lives or works now. That fact supersedes
 * the stored one it replaces (the same `supersedes` the LLM extractor sets). `replaces`: the
 * clause itself was the state ("I live in Rome now"), so only the superseding copy is kept.
 */
function stateFact(
  candidate: MemoryCandidate,
  clause: string,
  when: ResolvedDate | null,
  existing: readonly ExistingMemory[],
): { fact: MemoryCandidate; replaces: boolean } | null {
  if (candidate.layer !== 'PROFILE') return null;
  const text = when ? candidate.content.replace(` ${absoluteDate(when)}`, '') : candidate.content;
  const moved = MOVED.exec(text);
  if (moved?.[1]) {
    return supersede(`User lives in ${moved[1]}`, HOME, moved[1], existing, candidate, false);
  }
  const lives = LIVES.exec(text);
  if (lives?.[1] && text === candidate.content) {
    return supersede(text, HOME, lives[1], existing, candidate, true);
  }
  const job = NEW_JOB.exec(text);
  if (job?.[1] && job[2]) {
    return supersede(`User works ${job[1]} ${job[2]}`, WORK, job[2], existing, candidate, false);
  }
  const works = WORKS.exec(text);
  // "I work at a bank" beside a stored "works as a teller" may be the same job: only a
  // statement marked as new ("I now work as…", "…now") replaces the old one.
  if (works?.[2] && /\bnow\b/i.test(clause.concat(' ', candidate.content))) {
    return supersede(text.replace(/\bnow /, ''), WORK, works[2], existing, candidate, true);
  }
  return null;
}

const PLACE = String.raw`((?:[A-Z][\p{L}'-]*)(?:[ -](?:[A-Z][\p{L}'-]*|de|do|da|del|la|le))*)`;
const MOVED = new RegExp(
  String.raw`^User (?:has |had )?(?:finally |recently |\w+ly )?(?:moved|relocated)(?: back)? to ${PLACE}`,
  'u',
);
const LIVES = new RegExp(`^User (?:now )?lives in ${PLACE}$`, 'u');
const NEW_JOB =
  /^User (?:started (?:a new job|a job|working|work)|got (?:a |the )?(?:new )?job|switched to a job|has a new job) (at|as|for) (.+?)$/;
const WORKS = /^User (?:now )?(works) (?:as|at|for) (.+)$/;
const HOME = /^User (?:lives|is living) in (.+)$/i;
const WORK = /^User (?:works|is working) (?:as|at|for) (.+)$/i;

function supersede(
  content: string,
  pattern: RegExp,
  now: string,
  existing: readonly ExistingMemory[],
  from: MemoryCandidate,
  replaces: boolean,
): { fact: MemoryCandidate; replaces: boolean } {
  const old = existing.find((m) => {
    if (m.layer !== 'PROFILE') return false;
    const before = pattern.exec(m.content.trim().replace(/[.!]+$/, ''))?.[1];
    return before !== undefined && normalise(before) !== normalise(now);
  });
  const fact: MemoryCandidate = {
    content,
    category: 'FACT',
    layer: 'PROFILE',
    confidence: from.confidence ?? 0.8,
    ...(old ? { supersedes: old.id } : {}),
  };
  return { fact, replaces };
}

/** Sentence starts that open a new clause after a comma or a conjunction. */
const SUBJECT = String.raw`(?:i|i'm|i've|i'd|i'll|my|we|we're|we've|he|she|he's|she's|they|they're)\b`;
const RELATIVE_SUBJECT =
  /^((?:my|our) (?:\w+ ){0,2}?(?:[A-Z][\p{L}'-]*|\w+))\s+(?:is|was|has|lives|works)\b/iu;

/** "I have a son, he is seven": "he" is the son. */
const HAVE_RELATIVE = new RegExp(
  `^i (?:have|'ve got|have got) (?:a|an|one) (?:\\w+ )?(${RELATIVES.trim().split(/\s+/).join('|')})$`,
  'i',
);

function clauses(message: string): string[] {
  const text = message
    .replace(/[’‘]/g, "'")
    .replace(/\bname's\b/gi, 'name is')
    .replace(/[ \t]+/g, ' ');
  const result: string[] = [];
  for (const raw of text.split(/(?<=[.!?])\s+|\n+/)) {
    // "I'm a nurse, and you?": the statement stands; a real question is skipped whole.
    const sentence = raw
      .trim()
      .replace(/,?\s*(?:and you|what about you|how about you|right|you know)\s*\?$/i, '.')
      // "…tomorrow, honestly I feel nervous": the comma still ends a clause without the filler.
      .replace(
        /,\s*(?:by the way|btw|honestly|actually|to be honest|tbh|anyway|frankly),?\s*/gi,
        ', ',
      );
    if (sentence.endsWith('?') || JOKE.test(sentence)) continue;
    let pending = '';
    let subject: string | null = null;
    const splitter = new RegExp(
      String.raw`\s*;\s*|,\s*(?:(?:and|but|so|because)\s+)?(?=${SUBJECT})|,?\s+(?:and|but|so|because)\s+(?=${SUBJECT})`,
      'i',
    );
    for (const part of sentence.split(splitter)) {
      let clause = `${pending}${part.trim().replace(/[.!,;:\s]+$/, '')}`;
      // "My sister and I went…" was cut after a bare noun phrase: glue it to what follows.
      // So was "Me and my brother play…" after a lone pronoun.
      pending = /^(?:(?:my|our) \w+(?: \w+)?|me|you|him|her|them)$/i.test(clause)
        ? `${clause} and `
        : '';
      if (pending !== '' || clause === '') continue;
      // "My brother is a pilot and he lives in Dubai": "he" is the brother.
      if (subject)
        clause = clause.replace(/^(?:he|she|they)(?:'s| is| are)?\b/i, (p) => {
          const verb = /'s| is| are/i.exec(p)?.[0];
          return verb ? `${subject} is` : (subject ?? p);
        });
      const had = HAVE_RELATIVE.exec(clause)?.[1];
      subject = had ? `my ${had}` : (RELATIVE_SUBJECT.exec(clause)?.[1] ?? null);
      // "I'm Ken from Osaka": a name and a home town, two facts.
      const intro = INTRODUCTION.exec(clause);
      if (intro?.[1] && intro[2] && isCapitalised(intro[1]) && !NOT_A_NAME.test(intro[1])) {
        result.push(
          clause.slice(0, clause.length - intro[2].length - 6).trim(),
          `I'm from ${intro[2]}`,
        );
      } else {
        result.push(clause);
      }
    }
    // "I love my dog and my cat": a trailing bare noun phrase was an object after all.
    const last = result.length - 1;
    if (pending !== '' && last >= 0) result[last] = `${result[last]} and ${pending.slice(0, -5)}`;
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
function pronouns(
  persona: string,
  withPersona: boolean,
): Record<string, { to: string; agree?: boolean }> {
  // "we" is the user and the persona in a clause about them, else the user's household.
  const both = withPersona ? `User and ${persona}` : null;
  return {
    i: { to: 'User', agree: true },
    "i'm": { to: 'User is' },
    "i've": { to: 'User has' },
    "i'll": { to: 'User will' },
    "i'd": { to: 'User would' },
    me: { to: 'User' },
    mine: { to: "User's" },
    myself: { to: 'themselves' },
    we: both ? { to: both } : { to: 'User', agree: true },
    "we're": { to: both ? `${both} are` : 'User is' },
    "we've": { to: both ? `${both} have` : 'User has' },
    "we'll": { to: `${both ?? 'User'} will` },
    "we'd": { to: `${both ?? 'User'} would` },
    us: { to: both ?? 'User' },
    our: { to: `${both ?? 'User'}'s` },
    ours: { to: `${both ?? 'User'}'s` },
    ourselves: { to: both ?? 'themselves' },
    "you're": { to: `${persona} is` },
    "you've": { to: `${persona} has` },
    "you'll": { to: `${persona} will` },
    "you'd": { to: `${persona} would` },
    your: { to: `${persona}'s` },
    yours: { to: `${persona}'s` },
    yourself: { to: persona },
  };
}

/** "I'm a nurse and I love my dog" → "User is a nurse…", "User loves User's dog". */
export function rewriteThirdPerson(clause: string, persona: string, withPersona = true): string {
  const table = pronouns(persona, withPersona);
  const words = clause.split(' ');
  let agree = false;
  return words
    .map((token, index) => {
      const [, pre = '', word = '', post = ''] = /^([^\w']*)([\w']*)(.*)$/.exec(token) ?? [];
      const lower = word.toLowerCase();
      const previous = (words[index - 1] ?? '').toLowerCase().replace(/[^\w']/g, '');
      const next = (words[index + 1] ?? '').toLowerCase().replace(/[^\w']/g, '');
      let to = word;
      // An adverb between subject and verb keeps waiting: "User rarely drinks".
      if (agree && (ADVERBS.has(lower) || /^[a-z]{3,}ly$/.test(lower))) return token;
      if (agree) {
        to = thirdPerson(word);
        agree = false;
      } else if (lower === 'my') {
        to = "User's";
      } else if (lower === 'i' && previous === 'and') {
        // "My dad and I don't talk much": a plural subject keeps its verb.
        to = 'User';
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

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
