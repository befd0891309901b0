import { createSecretKey } from 'node:crypto';
import { type JWTPayload, errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { AppError, unauthenticated } from '../errors.js';
import { canonicalTimeZone } from '../time/zone.js';
import { createJwksKeySource, type JwksOptions, KeySetUnavailable } from './jwks.js';
import { createServiceKeyCheck, SUPABASE_SERVICE_ROLE, serviceViewer } from './service-keys.js';

export interface Viewer {
  /** The user's UUID; for a server-to-server caller `service:<key id>` (never a row owner). */
  id: string;
  isAdmin: boolean;
  /** Set for server-to-server callers (an API key or a service_role token): the key id. */
  service?: string;
  /**
   * The OpenID Connect standard claim `zoneinfo` (an IANA zone such as "Europe/Paris"), when the
   * token carries a valid one: the identity provider's zone is stored as the user's.
   */
  timeZone?: string;
}

/** At least one of `secret` and `jwksUrl`; with both, the token's `alg` picks the key. */
export interface AuthConfig {
  /** HS256 shared secret (JWT_SECRET / SUPABASE_JWT_SECRET). */
  secret?: string;
  /** Public keys for RS256 / ES256 / EdDSA tokens (JWKS_URL). */
  jwksUrl?: string;
  /** Cache and refetch tuning of the JWKS (defaults in jwks.ts). */
  jwks?: JwksOptions;
  issuer?: string;
  audience?: string;
  /** Tolerated clock difference between the issuer and this server (default 30 s). */
  clockToleranceSeconds?: number;
  adminUserIds: readonly string[];
  /** Supabase anonymous sign-ins (`is_anonymous: true`): accepted unless 'refuse'. */
  anonymousUsers?: 'allow' | 'refuse';
  /** Accept Supabase `service_role` tokens (no `sub`) as admin-scoped service callers. */
  serviceRole?: boolean;
  /** SERVICE_API_KEYS: key id → secret. */
  serviceKeys?: ReadonlyMap<string, string>;
  /** Milliseconds since the epoch; tests move it (default Date.now). */
  now?: () => number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DEFAULT_CLOCK_TOLERANCE_SECONDS = 30;

const SECRET_ALGORITHMS = ['HS256'];
/** `Ed25519` is the newer, fully-specified name of EdDSA over Ed25519 (RFC 9864). */
const JWKS_ALGORITHMS = ['RS256', 'ES256', 'EdDSA', 'Ed25519'];

export type TokenVerifier = (token: string) => Promise<Viewer>;

/**
 * Shared-secret (HS256) tokens already verified, by the token string. A client sends the same
 * token with every request until it expires, and checking its signature again (jose goes
 * through WebCrypto's asynchronous HMAC) was ~8 % of a chat turn's server CPU. What a check
 * depends on is fixed for the life of the process: the string itself (header, claims and
 * signature), the secret and the configuration; only time moves, so a hit still checks `exp`
 * exactly as jose does (with the same clock tolerance) and an expired token is verified again,
 * which rejects it as expired. Only successes are kept: a bad token costs a full check every
 * time and cannot take a place. Tokens verified against a JWKS are not kept: the issuer may
 * withdraw a key, and that must end its tokens within the key set's own max age (jwks.ts).
 * Bounded: the oldest entry makes room (~1 KB each).
 */
const VERIFIED_TOKENS_KEPT = 1_000;

/**
 * Supabase-compatible bearer tokens: `sub` is the user's UUID; admins carry
 * `app_metadata.role = "admin"` or are listed in ADMIN_USER_IDS. A bad token is
 * UNAUTHENTICATED with a generic message (no oracle for attackers); an unreachable key set is
 * SERVICE_UNAVAILABLE, so clients retry instead of logging the user out.
 */
export function createVerifier(config: AuthConfig): TokenVerifier {
  // A KeyObject, not the raw bytes: jose imports raw bytes into WebCrypto on every verify
  // (~4 % of a chat turn's CPU), a KeyObject once (it caches the conversion per object).
  const secret = config.secret ? createSecretKey(Buffer.from(config.secret, 'utf8')) : undefined;
  const jwks = config.jwksUrl
    ? createJwksKeySource(new URL(config.jwksUrl), config.jwks)
    : undefined;
  if (!secret && !jwks) throw new Error('auth needs a shared secret or a JWKS URL');
  // jose checks the header's alg against this list before any key is chosen, so `none` and
  // any family that is not configured never get further.
  const algorithms = [...(secret ? SECRET_ALGORITHMS : []), ...(jwks ? JWKS_ALGORITHMS : [])];
  const admins = new Set(config.adminUserIds.map((id) => id.toLowerCase()));
  const serviceKey = config.serviceKeys?.size ? createServiceKeyCheck(config.serviceKeys) : null;
  const now = config.now ?? Date.now;
  const tolerance = config.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  const verified = new Map<string, { viewer: Viewer; exp: number }>();

  return async (token) => {
    if (token.includes(':')) {
      const service = serviceKey?.(token);
      if (!service) throw unauthenticated('Invalid token.');
      return service;
    }
    const known = verified.get(token);
    if (known) {
      // jose's own test: expired once `exp <= now - tolerance`, in whole seconds.
      if (known.exp > Math.floor(now() / 1000) - tolerance) return known.viewer;
      verified.delete(token);
    }
    let payload: JWTPayload;
    let bySecret = false;
    try {
      ({ payload } = await jwtVerify(
        token,
        // Each key verifies only its own family: an HS256 token is checked against the shared
        // secret, never against a public key (the algorithm-confusion attack), and an
        // asymmetric token never against the secret.
        async (header, jws) => {
          if (header.alg === 'HS256' && secret) {
            bySecret = true;
            return secret;
          }
          if (jwks) return jwks(header, jws);
          throw new joseErrors.JOSEAlgNotAllowed('no key for this algorithm');
        },
        {
          algorithms,
          issuer: config.issuer,
          audience: config.audience,
          clockTolerance: tolerance,
          currentDate: new Date(now()),
          // `sub` is checked below: a service_role token has none.
          requiredClaims: ['exp'],
        },
      ));
    } catch (err) {
      if (err instanceof KeySetUnavailable) {
        throw Object.assign(
          new AppError('SERVICE_UNAVAILABLE', 'Cannot verify tokens right now; retry shortly.'),
          { cause: err },
        );
      }
      const reason = err instanceof joseErrors.JWTExpired ? 'Token expired.' : 'Invalid token.';
      throw unauthenticated(reason);
    }
    const viewer = viewerOf(payload);
    if (bySecret && typeof payload.exp === 'number') {
      if (verified.size >= VERIFIED_TOKENS_KEPT) {
        const oldest = verified.keys().next().value;
        if (oldest !== undefined) verified.delete(oldest);
      }
      // Frozen: one object now serves every request carrying this token.
      verified.set(token, { viewer: Object.freeze(viewer), exp: payload.exp });
    }
    return viewer;
  };

  /** The viewer a verified token stands for; throws UNAUTHENTICATED for unusable claims. */
  function viewerOf(payload: JWTPayload): Viewer {
    const sub: unknown = payload.sub;
    if (sub === undefined && payload.role === 'service_role' && config.serviceRole) {
      return serviceViewer(SUPABASE_SERVICE_ROLE);
    }
    // A claim is any JSON value: an array holding a UUID would pass the regex (it stringifies).
    if (typeof sub !== 'string' || !UUID.test(sub)) throw unauthenticated('Invalid token.');
    if (payload.is_anonymous === true && config.anonymousUsers === 'refuse') {
      throw unauthenticated('Anonymous sign-ins are not accepted: sign in with an account.');
    }
    const id = sub.toLowerCase();
    const appMetadata = payload.app_metadata as { role?: unknown } | undefined;
    const viewer: Viewer = { id, isAdmin: appMetadata?.role === 'admin' || admins.has(id) };
    // An unusable zone in a valid token is ignored rather than failing the request.
    const zone = typeof payload.zoneinfo === 'string' ? canonicalTimeZone(payload.zoneinfo) : null;
    return zone ? { ...viewer, timeZone: zone } : viewer;
  }
}

/** Mints an HS256 token the verifier accepts (dev mode, the token CLI, tests). */
export async function mintToken(
  config: { secret: string; issuer?: string; audience?: string },
  claims: { sub: string; admin?: boolean; expiresIn?: string; zoneinfo?: string },
): Promise<string> {
  let jwt = new SignJWT({
    role: 'authenticated',
    ...(claims.admin ? { app_metadata: { role: 'admin' } } : {}),
    ...(claims.zoneinfo ? { zoneinfo: claims.zoneinfo } : {}),
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(claims.expiresIn ?? '1h');
  if (config.issuer) jwt = jwt.setIssuer(config.issuer);
  if (config.audience) jwt = jwt.setAudience(config.audience);
  return jwt.sign(new TextEncoder().encode(config.secret));
}
