import { orAfter } from '../../src/timeout.js';

const TIMED_OUT = Symbol('timed out');

/** The promise's value, or a rejection naming `what` after `ms`: no test waits for ever. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const result = await orAfter(promise, ms, TIMED_OUT);
  if (result === TIMED_OUT) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
  return result;
}
