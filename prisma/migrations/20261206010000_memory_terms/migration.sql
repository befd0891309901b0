-- A large layer's word search reads postings, not memories.
--
-- BM25 needs, for every memory of the layer that holds a query word: which words it holds, how
-- often (tf) and its document's length. Migration 20261205010000 found those memories through a
-- GIN index over (layer, word) keys, but GIN only says *which* rows match: each one was then
-- fetched from the heap and its document cut down to the query's words. For a heavy user that
-- is 1 000-1 700 rows per layer at ~5 µs each, most of a turn's recall (BENCHMARKS.md §2).
--
-- `memory_terms` holds one posting per (layer word, live memory) with everything BM25 reads:
-- the term frequency and the document length ride in the primary key's INCLUDE columns, so a
-- search is one index-only scan of the query words' postings in that layer, and no memory row is
-- read until the ranking is done (store.ts, bm25Ctes). Measured on the 100k-row bench: the
-- heavy relationship layer's word side went from 10.0 / 18.3 ms to 3.4 / 5.7 ms (p50 / p95).
--
-- - `term` is a 64-bit hash of the layer (the persona instance of a relationship memory, the
--   user of a profile memory) and the lexeme (`memory_term_key`): one key per layer word, 8
--   bytes instead of a uuid and a text. Two words of one layer sharing a hash (≈ n²/2^65 for a
--   layer of n distinct words: 3 in 10^10 at 100 000 words) would be one word to that layer's
--   word search: a memory holding either would match a query of the other, and their document
--   frequencies would add up. A memory holding both keeps one posting (ON CONFLICT DO NOTHING).
--   A collision across layers changes nothing: a search reads its own layer's keys, and every
--   row it returns passes the layer's filter (store.ts).
-- - The hash is of the text's bytes: a logical restore into a database of another encoding must
--   rebuild the postings (`SELECT memory_terms_rebuild();`, README "Operations").
-- - Live memories only (not superseded), as the HNSW indexes: recall never reads the others. A
--   history search (superseded rows included) tests each row's document instead.
-- - Kept by statement-level triggers on `memories` with transition tables, like
--   memory_layer_stats: an insert adds postings, a delete or a supersede removes them, an update
--   that changes a memory's document, layer or liveness replaces them. An erasure deletes the
--   user's memories, and with them every posting; a TRUNCATE of `memories` truncates the postings
--   (test/memory-layer-stats.test.ts checks that they stay in step through every kind of write).
-- - The triggers that delete postings plan their statements on every call (EXECUTE): a cached
--   plan would keep the join chosen for the first call's row count (a one-memory delete or an
--   erasure of 50 000 memories) for every later one on that connection.
-- - Size: ~105 bytes per posting (heap and index); a memory holds one posting per distinct word
--   of its document, date words included (16 on average in the synthetic bench: 168 MB for
--   100 000 memories, against 260 MB of HNSW indexes and 260 MB of heap).
-- - Autovacuum after 2 % new rows instead of 20 %: an index-only scan must read the heap for
--   pages the visibility map does not yet mark all-visible.

CREATE FUNCTION memory_term_key(layer uuid, lexeme text) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT hashtextextended(layer::text || ' ' || lexeme, 0) $$;

CREATE TABLE "memory_terms" (
  "term" BIGINT NOT NULL,
  "memory_id" UUID NOT NULL,
  -- The lexeme's positions in the document (1 for a document without positions).
  "tf" SMALLINT NOT NULL,
  -- The document's distinct lexemes (length(search_tsv)), BM25's document length.
  "len" INTEGER NOT NULL,
  CONSTRAINT "memory_terms_pkey" PRIMARY KEY ("term", "memory_id") INCLUDE ("tf", "len")
) WITH (autovacuum_vacuum_insert_scale_factor = 0.02, autovacuum_vacuum_scale_factor = 0.05);

-- One memory's postings: a row per distinct lexeme of its document. `layer` is
-- COALESCE(instance_id, user_id).
CREATE FUNCTION memory_postings(id uuid, layer uuid, doc tsvector)
RETURNS TABLE (term bigint, memory_id uuid, tf smallint, len integer)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT memory_term_key(layer, p.lexeme), id, COALESCE(cardinality(p.positions), 1)::smallint,
    length(doc)
  FROM unnest(doc) AS p
$$;

CREATE FUNCTION memory_terms_insert() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  INSERT INTO memory_terms (term, memory_id, tf, len)
  SELECT p.term, p.memory_id, p.tf, p.len
  FROM new_rows AS n, memory_postings(n.id, COALESCE(n.instance_id, n.user_id), n.search_tsv) AS p
  WHERE n.superseded_by_id IS NULL
  ORDER BY 1, 2
  ON CONFLICT DO NOTHING;
  RETURN NULL;
END
$$;

CREATE FUNCTION memory_terms_delete() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  EXECUTE $sql$
    DELETE FROM memory_terms AS t
    USING old_rows AS o,
      memory_postings(o.id, COALESCE(o.instance_id, o.user_id), o.search_tsv) AS p
    WHERE o.superseded_by_id IS NULL AND t.term = p.term AND t.memory_id = p.memory_id
  $sql$;
  RETURN NULL;
END
$$;

-- Only rows whose postings change: a supersede or its undoing, a new document (content or
-- dates), a move to another layer. Most updates (an embedding, a confidence) change none.
CREATE FUNCTION memory_terms_update() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  EXECUTE $sql$
    DELETE FROM memory_terms AS t
    USING old_rows AS o,
      memory_postings(o.id, COALESCE(o.instance_id, o.user_id), o.search_tsv) AS p
    WHERE o.superseded_by_id IS NULL AND t.term = p.term AND t.memory_id = p.memory_id
      AND NOT EXISTS (
        SELECT 1 FROM new_rows AS n
        WHERE n.id = o.id AND n.superseded_by_id IS NULL AND n.user_id = o.user_id
          AND n.instance_id IS NOT DISTINCT FROM o.instance_id
          AND n.search_tsv IS NOT DISTINCT FROM o.search_tsv)
  $sql$;
  EXECUTE $sql$
    INSERT INTO memory_terms (term, memory_id, tf, len)
    SELECT p.term, p.memory_id, p.tf, p.len
    FROM new_rows AS n,
      memory_postings(n.id, COALESCE(n.instance_id, n.user_id), n.search_tsv) AS p
    WHERE n.superseded_by_id IS NULL
      AND NOT EXISTS (
        SELECT 1 FROM old_rows AS o
        WHERE o.id = n.id AND o.superseded_by_id IS NULL AND o.user_id = n.user_id
          AND o.instance_id IS NOT DISTINCT FROM n.instance_id
          AND o.search_tsv IS NOT DISTINCT FROM n.search_tsv)
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING
  $sql$;
  RETURN NULL;
END
$$;

CREATE FUNCTION memory_terms_truncate() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  TRUNCATE memory_terms;
  RETURN NULL;
END
$$;

-- Every live memory's postings again, from the documents: after a logical restore into another
-- encoding, or if anything ever wrote around the triggers. Locks out memory writes meanwhile.
CREATE FUNCTION memory_terms_rebuild() RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
  added bigint;
BEGIN
  LOCK TABLE memories IN SHARE MODE;
  TRUNCATE memory_terms;
  INSERT INTO memory_terms (term, memory_id, tf, len)
  SELECT p.term, p.memory_id, p.tf, p.len
  FROM memories AS m,
    memory_postings(m.id, COALESCE(m.instance_id, m.user_id), m.search_tsv) AS p
  WHERE m.superseded_by_id IS NULL
  ORDER BY 1, 2
  ON CONFLICT DO NOTHING;
  GET DIAGNOSTICS added = ROW_COUNT;
  ANALYZE memory_terms;
  RETURN added;
END
$$;

CREATE TRIGGER "memories_terms_insert" AFTER INSERT ON "memories"
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION memory_terms_insert();
CREATE TRIGGER "memories_terms_delete" AFTER DELETE ON "memories"
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION memory_terms_delete();
CREATE TRIGGER "memories_terms_update" AFTER UPDATE ON "memories"
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION memory_terms_update();
CREATE TRIGGER "memories_terms_truncate" AFTER TRUNCATE ON "memories"
  FOR EACH STATEMENT EXECUTE FUNCTION memory_terms_truncate();

-- The existing live memories: ~17 s per 100 000 memories on the bench machine, during which
-- memory writes wait (a deployment's maintenance window, as for migration 20261203010000).
SELECT memory_terms_rebuild();

-- The (layer, word) GIN index of migration 20261205010000 served only the search replaced here.
DROP INDEX "memories_search_keys_idx";
DROP FUNCTION memory_search_keys(uuid, text[]);
