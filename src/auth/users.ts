import type { PrismaClient } from '@prisma/client';

/**
 * Users are provisioned on their first authenticated request. A bounded map of ids known to
 * exist (with the token's time zone last stored) saves the upsert on later requests; evicting
 * an id only costs one idempotent upsert. A token's `zoneinfo` claim is written through to the
 * user, so deployments whose identity provider knows the zone need no `updateViewer` call.
 */
export function createUserProvisioner(prisma: PrismaClient, capacity = 10_000) {
  const known = new Map<string, string | undefined>();
  return async (viewer: { id: string; timeZone?: string }): Promise<void> => {
    const { id, timeZone } = viewer;
    if (known.has(id) && known.get(id) === timeZone) return;
    if (timeZone) {
      await prisma.$executeRaw`INSERT INTO users (id, time_zone) VALUES (${id}::uuid, ${timeZone})
        ON CONFLICT (id) DO UPDATE SET time_zone = EXCLUDED.time_zone
        WHERE users.time_zone IS DISTINCT FROM EXCLUDED.time_zone`;
    } else {
      await prisma.$executeRaw`INSERT INTO users (id) VALUES (${id}::uuid) ON CONFLICT DO NOTHING`;
    }
    if (!known.has(id) && known.size >= capacity) {
      const oldest = known.keys().next().value;
      if (oldest !== undefined) known.delete(oldest);
    }
    known.set(id, timeZone);
  };
}
