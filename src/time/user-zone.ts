import type { PrismaClient } from '@prisma/client';
import { badInput } from '../errors.js';
import { canonicalTimeZone } from './zone.js';

/** Stores the user's zone in its canonical spelling; anything Intl does not know is refused. */
export async function setUserTimeZone(
  prisma: PrismaClient,
  userId: string,
  input: string,
): Promise<void> {
  const zone = canonicalTimeZone(input);
  if (!zone) {
    throw badInput('timeZone must be an IANA time zone such as "Europe/Lisbon".', {
      field: 'timeZone',
    });
  }
  await prisma.user.update({ where: { id: userId }, data: { timeZone: zone } });
}
