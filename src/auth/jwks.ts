import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWSHeaderParameters,
} from 'jose';

export interface JwksOptions {
  /** Abort one fetch of the key set after this long (the request waiting on it fails). */
  timeoutMs?: number;
  /** After a fetch, an unknown `kid` waits this long before it may trigger another fetch. */
  cooldownMs?: number;
  /** Keys are refetched once they are this old, so a key the issuer withdrew stops working. */
  cacheMaxAgeMs?: number;
}

/**
 * - timeout 3 s: a request that happens to refresh the keys waits at most this long; an
 *   issuer slower than that is down for our purposes.
 * - cooldown 30 s: a token with an unknown `kid` triggers a refetch (key rotation), but at most
 *   one per 30 s, so a stream of forged kids cannot turn us into a load generator against the
 *   issuer. Issuers publish a new key before they sign with it, so a rotation is picked up by
 *   the first token that carries it.
 * - max age 10 min: bounds how long a withdrawn key is still accepted.
 */
export const JWKS_DEFAULTS: Required<JwksOptions> = {
  timeoutMs: 3_000,
  cooldownMs: 30_000,
  cacheMaxAgeMs: 600_000,
};

/** The key set could not be fetched (network, timeout, HTTP error, not a JWKS): not the token's fault. */
export class KeySetUnavailable extends Error {
  override readonly name = 'KeySetUnavailable';
}

export type KeySource = (
  header: JWSHeaderParameters,
  token: FlattenedJWSInput,
) => ReturnType<ReturnType<typeof createLocalJWKSet>>;

/** Failures of fetching the set, as opposed to a token whose key is not in it. */
function isFetchFailure(err: unknown): boolean {
  if (!(err instanceof errors.JOSEError)) return true; // fetch's own TypeError (DNS, refused)
  return (
    err instanceof errors.JWKSTimeout ||
    err instanceof errors.JWKSInvalid ||
    // jose reports a non-200 answer and unparsable JSON as plain JOSEErrors.
    err.code === 'ERR_JOSE_GENERIC'
  );
}

/**
 * Keys from a JWKS URL (jose's remote set: cached, refetched on an unknown `kid` or when
 * stale). When a refetch fails, the last good set keeps verifying for one cooldown period
 * before the next attempt: an issuer's brief outage should not log every user out, nor make
 * every request wait for a timeout.
 */
export function createJwksKeySource(url: URL, options: JwksOptions = {}): KeySource {
  const o = { ...JWKS_DEFAULTS, ...options };
  const remote = createRemoteJWKSet(url, {
    timeoutDuration: o.timeoutMs,
    cooldownDuration: o.cooldownMs,
    cacheMaxAge: o.cacheMaxAgeMs,
  });
  let retryRemoteAt = 0;
  let stale: { json: string; keys: KeySource } | undefined;
  // jose's local set caches imported keys: keep one per fetched set, not one per request.
  const lastGood = (): KeySource | undefined => {
    const set: JSONWebKeySet | undefined = remote.jwks();
    if (!set) return undefined;
    const json = JSON.stringify(set);
    if (stale?.json !== json) stale = { json, keys: createLocalJWKSet(set) };
    return stale.keys;
  };
  return async (header, token) => {
    const fallback = Date.now() < retryRemoteAt ? lastGood() : undefined;
    if (fallback) return fallback(header, token);
    try {
      return await remote(header, token);
    } catch (err) {
      if (!isFetchFailure(err)) throw err;
      retryRemoteAt = Date.now() + o.cooldownMs;
      const keys = lastGood();
      if (keys) return keys(header, token);
      throw new KeySetUnavailable(`cannot fetch the JWKS from ${url.origin}`, { cause: err });
    }
  };
}
