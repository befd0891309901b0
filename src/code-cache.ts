/**
 * Loads the bundled server (dist/src/server.cjs, written by scripts/bundle.ts) through a V8
 * code cache made at build time, so a machine waking from scale-to-zero does not parse and
 * compile ~4 MB of JavaScript again (BENCHMARKS.md §4: compiling the bundle was the largest
 * single cost of the wake-up).
 *
 * Why by hand: Node 22's `module.enableCompileCache()` does this for ES modules, but Node 20
 * (this project's floor, and CI) has no such API; `vm.Script`'s `cachedData` is the public way
 * on both, and it takes a CommonJS-shaped script, hence a CommonJS bundle. The cache is made
 * after *evaluating* the bundle (every module's top level and the GraphQL schema build ran),
 * so it holds those functions compiled, not just the outermost code. Evaluating starts nothing:
 * the bundle only exports `startServer`.
 *
 * V8 accepts a cache only from the same Node version and the same V8 flags (e.g. NODE_OPTIONS'
 * --max-old-space-size), so caches are kept per key (Node version, architecture, NODE_OPTIONS)
 * and the build makes one for each configuration that starts the server (scripts/bundle.ts).
 * A missing or rejected cache costs nothing but the compile it would have saved.
 *
 * Limits: the cached script must not use `import()` (Node 20 loses the dynamic-import callback
 * of a script compiled from a cache), so the bundle turns `import()` into `require()`.
 *
 *   node dist/src/code-cache.js <bundle.cjs>    writes the cache for this process's key
 */
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

/** What a cache depends on, as far as this process can tell (V8 checks the rest itself). */
export function codeCacheKey(): string {
  return createHash('sha256')
    .update(`${process.version}\0${process.arch}\0${process.env.NODE_OPTIONS ?? ''}`)
    .digest('hex')
    .slice(0, 16);
}

export function codeCacheFile(bundle: string): string {
  return `${bundle}.${codeCacheKey()}.cache`;
}

interface Loaded {
  exports: Record<string, unknown>;
  script: Script;
  /** Whether a cache was found and V8 took it. */
  cached: boolean;
}

function load(bundle: string, useCache: boolean): Loaded {
  const file = resolve(bundle);
  let cachedData: Buffer | undefined;
  if (useCache) {
    try {
      cachedData = readFileSync(codeCacheFile(file));
    } catch {
      // No cache for this Node/flags: compile as usual.
    }
  }
  const script = new Script(Module.wrap(readFileSync(file, 'utf8')), {
    filename: file,
    cachedData,
  });
  // As Node's own CommonJS loader calls a module: (exports, require, module, __filename, __dirname).
  const module = { exports: {} as Record<string, unknown> };
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  wrapper.call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
  return {
    exports: module.exports,
    script,
    cached: cachedData !== undefined && !script.cachedDataRejected,
  };
}

/**
 * Evaluates a CommonJS bundle, through its code cache when there is a usable one; `cached`
 * says whether V8 took a cache.
 */
export function loadWithCodeCache(bundle: string): {
  exports: Record<string, unknown>;
  cached: boolean;
} {
  const { exports, cached } = load(bundle, true);
  return { exports, cached };
}

/**
 * Evaluates the bundle (starting nothing), runs its `warmCodeCache` export if it has one (code
 * run before the cache is written is in it, compiled), and writes its code cache for this
 * process's key.
 */
export async function writeCodeCache(bundle: string): Promise<{ file: string; bytes: number }> {
  const { script, exports } = load(bundle, false);
  if (typeof exports.warmCodeCache === 'function') await exports.warmCodeCache();
  const data = script.createCachedData();
  const file = codeCacheFile(resolve(bundle));
  // Written whole or not at all: a machine never reads half a cache.
  writeFileSync(`${file}.tmp`, data);
  renameSync(`${file}.tmp`, file);
  return { file, bytes: data.length };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const bundle = process.argv[2];
  if (!bundle) {
    process.stderr.write('usage: node code-cache.js <bundle.cjs>\n');
    process.exit(2);
  }
  const { file, bytes } = await writeCodeCache(bundle);
  process.stdout.write(`${file} ${bytes}\n`);
  // Evaluating the bundle may have left handles (timers of libraries): the work is done.
  process.exit(0);
}
