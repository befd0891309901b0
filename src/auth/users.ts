import type { PrismaClient } from '@prisma/client';

/**
 * Users are provisioned on their first authenticated request. A bounded set of ids known to
 * exist saves the upsert on later requests; evicting an id only costs one idempotent upsert.
 */
export function createUserProvisioner(prisma: PrismaClient, capacity = 10_000) {
  const known = new Set<string>();
  return async (id: string): Promise<void> => {
    if (known.has(id)) return;
    await prisma.$executeRaw`INSERT INTO users (id) VALUES (${id}::uuid) ON CONFLICT DO NOTHING`;
    if (known.size >= capacity) {
      const oldest = known.values().next().value;
      if (oldest !== undefined) known.delete(oldest);
    }
    known.add(id);
  };
}
