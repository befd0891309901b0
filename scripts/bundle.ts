/**
 * `npm run build`'s last step: rewrites the compiled entry points the machines start
 * (dist/src/index.js, dist/src/worker-main.js, dist/src/db/migrate-cli.js) as single-file
 * bundles, in place, so every command (`node dist/src/index.js`, fly.toml, the Dockerfile) stays
 * the same.
 *
 * The API server (the one that wakes from scale-to-zero) goes one step further: src/server.ts is
 * bundled as CommonJS into dist/src/server.cjs, dist/src/index.js becomes a two-line launcher
 * that loads it through a V8 code cache (src/code-cache.ts), and the caches are made here, one
 * per V8 configuration the server starts with: no NODE_OPTIONS (CI, the benches, a plain
 * `npm run start:prod`) and fly.toml's NODE_OPTIONS (the heap flags change V8's flag hash, and
 * V8 refuses a cache made under other flags). The worker and the release command stay ES module
 * bundles: nothing waits on their start. The server's bundle is built without esbuild's
 * `keepNames` (a per-request cost), with renamed classes' names restored (scripts/bundle-names.ts).
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
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';
import { restoreClassNames } from './bundle-names.js';

const outDir = process.argv[2] ?? 'dist';
const ENTRIES = ['src/worker-main.js', 'src/db/migrate-cli.js'];

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
// The server is built twice in memory, with and without `keepNames`: the bundle is the one
// without (keepNames' `__name` calls were ~20 % of a chat turn's CPU), with the names of the
// classes esbuild renamed put back from the other (scripts/bundle-names.ts).
const serverBuilds = await Promise.all(
  [true, false].map((keepNames) =>
    build({
      entryPoints: [`${outDir}/src/server.js`],
      outfile: `${outDir}/src/server.cjs`,
      write: false,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      external: BUNDLE_EXTERNAL,
      // No `import()` in a script compiled from a code cache (src/code-cache.ts): the optional
      // packages imported on first use (PGlite, the local embedder, GraphiQL) are required instead;
      // each ships a CommonJS build.
      supported: { 'dynamic-import': false },
      // prisma/migrations is found from the bundle's own location (src/db/migrate.ts).
      define: { 'import.meta.url': '__bundleUrl' },
      banner: { js: "const __bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
      keepNames,
      logLevel: 'warning',
    }),
  ),
);
const [named, plain] = serverBuilds.map((b) => b.outputFiles[0]?.text ?? '') as [string, string];
writeFileSync(`${outDir}/src/server.cjs`, restoreClassNames(named, plain).text);
// The tsc output the bundle replaced: nothing loads it any more.
for (const stale of ['server.js', 'server.js.map', 'index.js.map']) {
  rmSync(`${outDir}/src/${stale}`, { force: true });
}
writeFileSync(
  `${outDir}/src/index.js`,
  `// Written by scripts/bundle.ts: the server bundle, loaded through its V8 code cache.
import { fileURLToPath } from 'node:url';
import { loadWithCodeCache } from './code-cache.js';

loadWithCodeCache(fileURLToPath(new URL('./server.cjs', import.meta.url))).exports.startServer();
`,
);

/** NODE_OPTIONS of fly.toml's [env] (the machines' V8 flags), if set there. */
function flyNodeOptions(): string | undefined {
  try {
    return /^\s*NODE_OPTIONS\s*=\s*"([^"]*)"/m.exec(readFileSync('fly.toml', 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

const caches: string[] = [];
for (const nodeOptions of new Set(['', flyNodeOptions() ?? ''])) {
  const made = spawnSync(
    process.execPath,
    [`${outDir}/src/code-cache.js`, `${outDir}/src/server.cjs`],
    {
      env: { ...process.env, NODE_OPTIONS: nodeOptions },
      encoding: 'utf8',
    },
  );
  if (made.status !== 0) {
    throw new Error(`code cache (NODE_OPTIONS="${nodeOptions}") failed:\n${made.stderr}`);
  }
  caches.push(`NODE_OPTIONS="${nodeOptions}": ${made.stdout.trim().split(' ')[1]} bytes`);
}
process.stderr.write(
  `[bundle] ${ENTRIES.length + 1} entry points bundled in ${outDir} in ${Math.round(performance.now() - started)} ms; code caches: ${caches.join(', ')}\n`,
);
