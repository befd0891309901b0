-- Per-layer counts for recall, kept by the database itself.
--
-- A turn's recall needs two numbers about the layer it searches: how many live memories it has
-- (BM25's N, and the switch between the exact scan and the HNSW index, store.ts) and their total
-- lexical-document length (BM25's average document length). Computing them per search means
-- reading every row of the layer: ~50 000 rows for a heavy user, on every turn. Here they are
-- one row per (user, layer), kept by statement-level triggers on `memories`, so a search reads
-- them with one primary-key lookup.
--
-- "Live" is what the HNSW indexes and recall see: not superseded (expiry and the embedding model
-- are checked per search, not here). `instance_key` is the persona instance of a relationship
-- layer, or the zero uuid for the profile layer (a primary key cannot hold a NULL).
--
-- Statement-level triggers with transition tables: a bulk insert, a supersede or an erasure
-- updates each affected layer's row once, not once per memory. Rows are locked in key order,
-- so two statements touching the same layers cannot deadlock on them. A layer row that drops to
-- zero live memories is deleted, so the table holds at most one row per non-empty layer, and a
-- user's rows go with the user (foreign key, ON DELETE CASCADE).

CREATE TABLE "memory_layer_stats" (
  "user_id" UUID NOT NULL,
  "instance_key" UUID NOT NULL,
  "live_rows" BIGINT NOT NULL,
  "lexical_length" BIGINT NOT NULL,
  CONSTRAINT "memory_layer_stats_pkey" PRIMARY KEY ("user_id", "instance_key"),
  CONSTRAINT "memory_layer_stats_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id")
    ON DELETE CASCADE ON UPDATE CASCADE
);

-- Adds per-layer deltas (live rows, lexical length); drops rows left with no live memory. A
-- positive delta for a user that no longer exists cannot happen: memories need their user.
CREATE FUNCTION memory_layer_stats_apply(deltas jsonb) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
  INSERT INTO memory_layer_stats AS s (user_id, instance_key, live_rows, lexical_length)
  SELECT d.user_id, d.instance_key, d.live_rows, d.lexical_length
  FROM jsonb_to_recordset(deltas)
    AS d(user_id uuid, instance_key uuid, live_rows bigint, lexical_length bigint)
  WHERE d.live_rows > 0 AND EXISTS (SELECT 1 FROM users u WHERE u.id = d.user_id)
  ORDER BY d.user_id, d.instance_key
  ON CONFLICT (user_id, instance_key) DO UPDATE
    SET live_rows = s.live_rows + EXCLUDED.live_rows,
        lexical_length = s.lexical_length + EXCLUDED.lexical_length;
  -- Shrinking layers (a delete, a supersede; during an erasure the user's rows may already be
  -- gone, and then there is nothing to update).
  UPDATE memory_layer_stats AS s
  SET live_rows = s.live_rows + d.live_rows, lexical_length = s.lexical_length + d.lexical_length
  FROM (
    SELECT * FROM jsonb_to_recordset(deltas)
      AS d(user_id uuid, instance_key uuid, live_rows bigint, lexical_length bigint)
    WHERE d.live_rows <= 0 AND (d.live_rows <> 0 OR d.lexical_length <> 0)
  ) AS d
  WHERE s.user_id = d.user_id AND s.instance_key = d.instance_key;
  DELETE FROM memory_layer_stats AS s
  USING jsonb_to_recordset(deltas)
    AS d(user_id uuid, instance_key uuid, live_rows bigint, lexical_length bigint)
  WHERE d.live_rows < 0 AND s.user_id = d.user_id AND s.instance_key = d.instance_key
    AND s.live_rows <= 0;
END
$$;

CREATE FUNCTION memory_layer_stats_insert() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM memory_layer_stats_apply(COALESCE((
    SELECT jsonb_agg(d) FROM (
      SELECT user_id, COALESCE(instance_id, '00000000-0000-0000-0000-000000000000'::uuid) AS instance_key,
        count(*) AS live_rows, COALESCE(sum(length(search_tsv)), 0) AS lexical_length
      FROM new_rows WHERE superseded_by_id IS NULL
      GROUP BY 1, 2
    ) AS d), '[]'::jsonb));
  RETURN NULL;
END
$$;

CREATE FUNCTION memory_layer_stats_delete() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM memory_layer_stats_apply(COALESCE((
    SELECT jsonb_agg(d) FROM (
      SELECT user_id, COALESCE(instance_id, '00000000-0000-0000-0000-000000000000'::uuid) AS instance_key,
        -count(*) AS live_rows, -COALESCE(sum(length(search_tsv)), 0) AS lexical_length
      FROM old_rows WHERE superseded_by_id IS NULL
      GROUP BY 1, 2
    ) AS d), '[]'::jsonb));
  RETURN NULL;
END
$$;

-- An update may supersede a memory, bring one back, or change its text: the new rows' live
-- totals minus the old rows', per layer (most updates change neither, and write nothing).
CREATE FUNCTION memory_layer_stats_update() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM memory_layer_stats_apply(COALESCE((
    SELECT jsonb_agg(d) FROM (
      SELECT user_id, instance_key, sum(live_rows) AS live_rows, sum(lexical_length) AS lexical_length
      FROM (
        SELECT user_id, COALESCE(instance_id, '00000000-0000-0000-0000-000000000000'::uuid) AS instance_key,
          1 AS live_rows, COALESCE(length(search_tsv), 0) AS lexical_length
        FROM new_rows WHERE superseded_by_id IS NULL
        UNION ALL
        SELECT user_id, COALESCE(instance_id, '00000000-0000-0000-0000-000000000000'::uuid),
          -1, -COALESCE(length(search_tsv), 0)
        FROM old_rows WHERE superseded_by_id IS NULL
      ) AS changes
      GROUP BY 1, 2
      HAVING sum(live_rows) <> 0 OR sum(lexical_length) <> 0
    ) AS d), '[]'::jsonb));
  RETURN NULL;
END
$$;

CREATE TRIGGER "memories_layer_stats_insert" AFTER INSERT ON "memories"
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION memory_layer_stats_insert();
CREATE TRIGGER "memories_layer_stats_delete" AFTER DELETE ON "memories"
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION memory_layer_stats_delete();
CREATE TRIGGER "memories_layer_stats_update" AFTER UPDATE ON "memories"
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION memory_layer_stats_update();

-- The existing memories.
INSERT INTO "memory_layer_stats" ("user_id", "instance_key", "live_rows", "lexical_length")
SELECT "user_id", COALESCE("instance_id", '00000000-0000-0000-0000-000000000000'::uuid),
  count(*), COALESCE(sum(length("search_tsv")), 0)
FROM "memories" WHERE "superseded_by_id" IS NULL
GROUP BY 1, 2;

-- The lexical index without a pending list. With GIN's default `fastupdate`, new entries wait in
-- an unsorted list (up to 4 MB) that every search scans in full until a vacuum merges it: a
-- turn's word search then costs tens of milliseconds on a busy table. Memories are written
-- rarely (extraction) and searched on every turn, so each insert pays to index at once.
ALTER INDEX "memories_search_tsv_idx" SET (fastupdate = off);
SELECT gin_clean_pending_list('memories_search_tsv_idx'::regclass);
