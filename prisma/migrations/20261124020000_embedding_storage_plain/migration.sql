-- Keep each 2 KB vector inside its row instead of TOASTed out of line: a heavy user's exact
-- recall read 240k buffers for 30k rows with out-of-line vectors (BENCHMARKS.md, recall at
-- scale: 270 ms → 94 ms p50 at 50k memories). Applies to rows written from now on; existing
-- rows move when rewritten (e.g. by `npm run reembed` or VACUUM FULL).
ALTER TABLE "memories" ALTER COLUMN "embedding" SET STORAGE PLAIN;
