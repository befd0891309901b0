-- Word search inside one layer reads only that layer's postings.
--
-- A large layer (RECALL_ANN_MIN_ROWS live memories and more) found the memories holding a query
-- word through the GIN index on `search_tsv`. That index is global: its postings for a word are
-- every user's rows with it, so each search also read the layer's per-user btree in full
-- (30 000 entries for a heavy user's layer) and intersected the two bitmaps. That was most of a
-- heavy user's word side (BENCHMARKS.md §2).
--
-- Here the key of a posting is (layer, word): `memory_search_keys` hashes each lexeme of a
-- document together with its layer (the persona instance for a relationship memory, the user
-- for a profile memory) into a bigint, and a GIN index over those arrays returns exactly the
-- layer's rows holding any of the query's words. A 64-bit hash collision can only add a row
-- holding none of the words, which BM25 then scores with nothing (store.ts reads the words from
-- the row's own document), so the keys need no recheck.
--
-- An expression index, not a column: no table rewrite or trigger, and nothing to keep in step
-- with `search_tsv` (the expression is computed from it). Live rows only, like the HNSW
-- indexes: recall never reads superseded ones. No pending list (`fastupdate = off`), as for the
-- index it replaces (migration 20261204020000): a search would otherwise scan up to 4 MB of
-- unmerged entries until the next vacuum.

CREATE FUNCTION memory_search_keys(layer uuid, lexemes text[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
  SELECT ARRAY(SELECT hashtextextended(layer::text || ' ' || lexeme, 0) FROM unnest(lexemes) AS lexeme)
$$;

CREATE INDEX "memories_search_keys_idx" ON "memories"
  USING gin (memory_search_keys(COALESCE("instance_id", "user_id"), tsvector_to_array("search_tsv")))
  WITH (fastupdate = off)
  WHERE "superseded_by_id" IS NULL;

-- The global index on the document served only the large-layer search replaced here.
DROP INDEX "memories_search_tsv_idx";
