/**
 * The server bundle is built without esbuild's `keepNames` (scripts/bundle.ts), and this puts
 * back the one kind of name that changes without it: the `.name` of classes the bundler had to
 * rename.
 *
 * Why not `keepNames`: it wraps every named function and class in a `__name(fn, "name")` call
 * that redefines `.name` with `Object.defineProperty`, and for the closures a library creates per
 * call (graphql-tools' executor per resolved field, @whatwg-node's promise helpers, the pg driver
 * per query, …) that runs on every request and gives each closure a map of its own. It was ~5 %
 * of the bundled server's busy time and ~20 % of its CPU per chat turn (BENCHMARKS.md §3), the
 * reason the bundle cost more per turn than the same code through tsx.
 *
 * What changes without it: esbuild puts all modules in one scope and renames identifiers that
 * collide (`class DatabaseError` in pg becomes `DatabaseError2`, `class GraphQLError` becomes
 * `class _GraphQLError`), and a class's or function's `.name` follows its identifier. Nothing
 * reads the names of functions (checked: graphql's `inspect` prints them in schema-build
 * assertions, jose in a key-type message); class names are read for errors (pino's `type` of a
 * logged error is `err.constructor.name`) and appear in inspected values, so those are restored
 * here, exactly as `keepNames` would have: a `static { … }` block that sets `.name`, in each class
 * whose name differs from the one in the source. The list comes from a `keepNames` build of the
 * same code (its `static { __name(this, "X") }` blocks say which class is which), so it is exact
 * for whatever the dependencies contain; a class that cannot be matched fails the build.
 */

/** A class header line of esbuild's output, as `keepNames` marks it: header, `static {`, name. */
const NAMED_CLASS = /^(.*\bclass\b.*\{)\n[ \t]*static \{\n[ \t]*__name\(this, "([^"\\]*)"\);/gm;
/** `X = class Y extends …` / `class Y …`: the name a class gets without help (Y, else X). */
const CLASS_NAME = /(?:([\w$]+)\s*=\s*)?\bclass\b(?:\s+(?!extends\b)([\w$]+))?\s*(?:extends\b|\{)/;

export function restoreClassNames(
  withKeepNames: string,
  withoutKeepNames: string,
): { text: string; restored: string[] } {
  // header line → the name keepNames gives it (one name per distinct header, or the build fails)
  const wanted = new Map<string, string>();
  for (const m of withKeepNames.matchAll(NAMED_CLASS)) {
    const header = m[1] as string;
    const name = m[2] as string;
    const own = CLASS_NAME.exec(header);
    const natural = own ? (own[2] ?? own[1] ?? '') : '';
    if (natural === name) continue;
    if (wanted.has(header) && wanted.get(header) !== name) {
      throw new Error(`bundle-names: two classes share the header "${header.trim()}"`);
    }
    wanted.set(header, name);
  }
  const lines = withoutKeepNames.split('\n');
  const restored: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    const name = wanted.get(lines[i] as string);
    if (name === undefined) continue;
    lines[i] =
      `${lines[i]} static { Object.defineProperty(this, "name", { value: ${JSON.stringify(name)}, configurable: true }); }`;
    restored.push(name);
    seen.add(name);
  }
  const missing = [...new Set(wanted.values())].filter((name) => !seen.has(name));
  if (missing.length > 0) {
    throw new Error(
      `bundle-names: renamed classes not found without keepNames: ${missing.join(', ')}`,
    );
  }
  return { text: lines.join('\n'), restored };
}
