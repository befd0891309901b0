import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { unauthenticated } from '../errors.js';

export interface Viewer {
  id: string;
  isAdmin: boolean;
}

export interface AuthConfig {
  /** HS256 shared secret (JWT_SECRET / SUPABASE_JWT_SECRET). */
  secret: string;
  issuer?: string;
  audience?: string;
  adminUserIds: readonly string[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Tolerated clock difference between the token issuer and this server. */
const CLOCK_SKEW_SECONDS = 30;

export type TokenVerifier = (token: string) => Promise<Viewer>;

/**
 * Supabase-compatible bearer tokens: `sub` is the user's UUID; admins carry
 * `app_metadata.role = "admin"` or are listed in ADMIN_USER_IDS. Every failure is
 * UNAUTHENTICATED with a generic message (no oracle for attackers).
 */
export function createVerifier(config: AuthConfig): TokenVerifier {
  const key = new TextEncoder().encode(config.secret);
  const admins = new Set(config.adminUserIds.map((id) => id.toLowerCase()));
  return async (token) => {
    let payload: Awaited<ReturnType<typeof jwtVerify>>['payload'];
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: ['HS256'],
        issuer: config.issuer,
        audience: config.audience,
        clockTolerance: CLOCK_SKEW_SECONDS,
        requiredClaims: ['sub', 'exp'],
      }));
    } catch (err) {
      const reason = err instanceof joseErrors.JWTExpired ? 'Token expired.' : 'Invalid token.';
      throw unauthenticated(reason);
    }
    const sub = payload.sub;
    if (!sub || !UUID.test(sub)) throw unauthenticated('Invalid token.');
    const id = sub.toLowerCase();
    const appMetadata = payload.app_metadata as { role?: unknown } | undefined;
    return { id, isAdmin: appMetadata?.role === 'admin' || admins.has(id) };
  };
}

/** Mints a token the verifier accepts (dev mode, the token CLI, tests). */
export async function mintToken(
  config: Pick<AuthConfig, 'secret' | 'issuer' | 'audience'>,
  claims: { sub: string; admin?: boolean; expiresIn?: string },
): Promise<string> {
  let jwt = new SignJWT({
    role: 'authenticated',
    ...(claims.admin ? { app_metadata: { role: 'admin' } } : {}),
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(claims.expiresIn ?? '1h');
  if (config.issuer) jwt = jwt.setIssuer(config.issuer);
  if (config.audience) jwt = jwt.setAudience(config.audience);
  return jwt.sign(new TextEncoder().encode(config.secret));
}
