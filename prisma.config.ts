import { defineConfig } from 'prisma/config';

// The CLI is used for `generate` and `migrate diff` only; migrations are applied by
// src/db/migrate.ts. `engine: 'js'` keeps the CLI on its WASM engines (the native engines are
// downloads, and installs here reach the npm registry only). The schema's `url` is never used
// at run time — the app connects through driver adapters — but the CLI refuses a schema
// whose env var is missing, so give it a placeholder.
process.env.DATABASE_URL ??= 'postgresql://unused@127.0.0.1:5432/unused';

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: 'prisma/schema.prisma',
  adapter: async () => {
    const { PrismaPGlite } = await import('pglite-prisma-adapter');
    const { PGlite } = await import('@electric-sql/pglite');
    const { vector } = await import('@electric-sql/pglite-pgvector');
    // Typed against an older driver-adapter-utils; see src/db/client.ts.
    return new PrismaPGlite(new PGlite({ extensions: { vector } })) as never;
  },
});
