/**
 * What only zero-config mode loads — embedded PGlite (its pgvector extension and Prisma
 * adapter) and the local embedder (USE lite on tfjs) — is imported on first use, never at
 * start: a server on DATABASE_URL with Voyage never loads them (less memory, a faster
 * wake-up), and a production image leaves them out altogether (they are optionalDependencies;
 * the Dockerfile installs with --omit=optional). A plain `npm ci` installs them.
 */
export async function importZeroConfig<T>(load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw err;
    throw new Error(
      'zero-config mode (no DATABASE_URL, or EMBEDDINGS_PROVIDER=local) needs the optional dependencies, which this install left out (--omit=optional): run `npm ci` without it, or set DATABASE_URL and the Voyage/OpenRouter settings',
      { cause: err },
    );
  }
}
