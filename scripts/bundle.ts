/**
 * `npm run build`'s last step: rewrites the compiled entry points the machines start
 * (dist/src/index.js, dist/src/worker-main.js, dist/src/db/migrate-cli.js) as single-file
 * bundles, in place, so every command (`node dist/src/index.js`, fly.toml, the Dockerfile) stays
 * the same.
 *
 * Why: a Fly machine that scaled to zero wakes on a request, and most of that wake-up was Node
 * resolving, reading and compiling ~1 300 module files (graphql, graphql-tools, zod, Pothos,
 * yoga, …) one by one. One file cut spawn→first answer to ~0.4x and the idle RSS by ~10–15
 * MiB (BENCHMARKS.md §4). The other compiled files (the CLIs) stay as tsc wrote them.
 *
 * Kept out of the bundle (loaded from node_modules at run time):
 *  - the Prisma client (`@prisma/client`, the generated `.prisma/client`): it loads its query
 *    compiler's WASM from files beside itself;
 *  - PGlite, its pgvector extension and adapter, the local embedder (`@energetic-ai/*`): they
 *    load WASM/data files relative to themselves, and only zero-config mode imports them (a
 *    production image does not install them: Dockerfile);
 *  - GraphiQL's renderer: development only, and 9 MB of page assets;
 *  - native add-ons that libraries probe for with a guarded `require` (pg-native, bufferutil,
 *    utf-8-validate).
 *
 *   tsx scripts/bundle.ts [outDir]    (default dist; the benches pass their own build dir)
 */
import { build } from 'esbuild';

const outDir = process.argv[2] ?? 'dist';
const ENTRIES = ['src/index.js', 'src/worker-main.js', 'src/db/migrate-cli.js'];

export const BUNDLE_EXTERNAL = [
  '@prisma/client',
  '.prisma/*',
  '@electric-sql/*',
  'pglite-prisma-adapter',
  '@energetic-ai/*',
  '@graphql-yoga/render-graphiql',
  'pg-native',
  'bufferutil',
  'utf-8-validate',
];

const started = performance.now();
await Promise.all(
  ENTRIES.map((entry) =>
    build({
      entryPoints: [`${outDir}/${entry}`],
      outfile: `${outDir}/${entry}`,
      allowOverwrite: true,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      external: BUNDLE_EXTERNAL,
      // CommonJS dependencies inside an ES module bundle call `require` (node builtins,
      // the externals above): give them the real one.
      banner: {
        js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);",
      },
      // Readable stack traces: names are kept, nothing is minified.
      keepNames: true,
      logLevel: 'warning',
    }),
  ),
);
process.stderr.write(
  `[bundle] ${ENTRIES.length} entry points bundled in ${outDir} in ${Math.round(performance.now() - started)} ms\n`,
);
