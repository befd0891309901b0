import type { DueFollowUp } from '../memory/follow-ups.js';
import { daysBetween, localDateOf, shortDate } from '../time/zone.js';

/**
 * What a turn knows about time beyond "now": the last talk and a follow-up to raise. Read in
 * the turn's opening statement (src/chat/turn-store.ts openTurn).
 */
export interface TurnTime {
  /** The user's previous message to this persona (any session); null for a first talk. */
  lastTalkAt: Date | null;
  /** At most one due thread this persona may ask about. */
  followUp: DueFollowUp | null;
}

/**
 * The same time facts, structured for the offline companion (which cannot read the prompt):
 * days since the last talk in the user's calendar, and the follow-up with its day.
 */
export function offlineTimeContext(
  time: TurnTime,
  now: Date,
  zone: string,
): { daysSinceLastTalk?: number; followUp?: { content: string; when: string | null } } {
  const today = localDateOf(now, zone);
  const out: ReturnType<typeof offlineTimeContext> = {};
  if (time.lastTalkAt)
    out.daysSinceLastTalk = daysBetween(localDateOf(time.lastTalkAt, zone), today);
  if (time.followUp) {
    const when = time.followUp.occurredAt;
    out.followUp = {
      content: time.followUp.content,
      when: when ? `on ${shortDate(localDateOf(when, zone), today)}` : null,
    };
  }
  return out;
}
