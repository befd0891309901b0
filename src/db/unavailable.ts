const UNAVAILABLE_PRISMA_CODES = new Set([
  'P1001', // can't reach the database server
  'P1002', // the server timed out
  'P1017', // the server closed the connection
  'P2024', // timed out fetching a connection from the pool
]);
const UNAVAILABLE_ADAPTER_KINDS = new Set([
  'DatabaseNotReachable',
  'ConnectionClosed',
  'SocketTimeout',
  'TooManyConnections',
]);
/** 08xxx connection exception, 57P01-57P03 shutdown/crash/startup, 53300 too many connections. */
const UNAVAILABLE_SQLSTATE = /^(08[0-9A-Z]{3}|57P0[123]|53300)$/;
/** Socket errors: refused while down or starting, reset by a crash, unreachable host. */
const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE']);
/** node-postgres' own errors for a lost connection or an exhausted pool (no code on those). */
const UNAVAILABLE_MESSAGE =
  /^(Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect)/;

/**
 * Whether an error means "the database is (briefly) unavailable" — restarting, failing over,
 * unreachable, out of connections — rather than "this query is wrong". Such a request is safe
 * to retry: callers can answer SERVICE_UNAVAILABLE / retryable instead of an internal error.
 * Recognises the forms seen while Postgres restarts under load: Prisma's known request errors
 * (also wrapping a driver adapter error, e.g. P2010 for raw queries), bare DriverAdapterErrors
 * (from transactions), pg's DatabaseErrors and its plain Errors. Causes are followed only
 * through Prisma's errors, never through arbitrary wrappers.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  let e: unknown = error;
  for (let depth = 0; depth < 5 && e && typeof e === 'object'; depth++) {
    const { name, code, message, meta, cause } = e as {
      name?: unknown;
      code?: unknown;
      message?: unknown;
      meta?: { driverAdapterError?: unknown };
      cause?: unknown;
    };
    if (typeof code === 'string') {
      if (name === 'PrismaClientKnownRequestError' && UNAVAILABLE_PRISMA_CODES.has(code)) {
        return true;
      }
      if (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_ERRNO.has(code)) return true;
    }
    if (typeof message === 'string' && UNAVAILABLE_MESSAGE.test(message)) return true;
    if (name === 'DriverAdapterError' && cause && typeof cause === 'object') {
      const { kind, code: state, originalCode } = cause as Record<string, unknown>;
      if (typeof kind === 'string' && UNAVAILABLE_ADAPTER_KINDS.has(kind)) return true;
      for (const c of [state, originalCode]) {
        if (typeof c === 'string' && UNAVAILABLE_SQLSTATE.test(c)) return true;
      }
      return false;
    }
    // Down Prisma's wrapping only: a provider's fetch failure also ends in ECONNREFUSED or
    // ECONNRESET under `cause`, and must stay that provider's failure (with its backoff).
    const prisma = typeof name === 'string' && name.startsWith('PrismaClient');
    e = meta?.driverAdapterError ?? (prisma ? cause : undefined);
  }
  return false;
}
