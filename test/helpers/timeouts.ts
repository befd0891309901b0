/**
 * Client timeouts for tests against the local fakes.
 *
 * A timeout in a test must be one that a healthy fake answer never reaches, even on a machine
 * whose cores are saturated by other work: otherwise a slow-but-healthy answer times out, the
 * client retries once more than the test expects, and retry counts differ from run to run.
 * Hangs are simulated by fakes that truly never answer (`'hang'` faults, `NEVER` delays), so a
 * hang is still detected, only after this long instead of after a few milliseconds.
 */
export const CLIENT_TIMEOUT_MS = 3_000;

/** A fake delay that lasts until the client gives up or the fake closes (a true hang). */
export const NEVER = Number.POSITIVE_INFINITY;

/**
 * The per-test timeout of a test that starts a real process through tsx (which compiles the
 * code first: seconds on a quiet machine, more than a minute on a saturated one). It catches a
 * hang; it does not measure speed.
 */
export const PROCESS_TEST_TIMEOUT_MS = 240_000;

/**
 * The per-test timeout of a test that does much real work in one loop (e.g. ~100 GraphQL
 * searches, each embedded by the real local model): a minute can pass on a saturated machine.
 * Like the one above, it catches a hang and does not measure speed.
 */
export const LONG_TEST_TIMEOUT_MS = 240_000;
