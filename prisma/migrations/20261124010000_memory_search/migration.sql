-- Full-text side of hybrid memory search (src/memory/store.ts, searchLayerHybrid): a stored
-- tsvector of each memory's content and a GIN index over it.
--
-- Text search configuration 'english' (stemming + English stop words), not 'simple':
-- - Memories are written in English, in the third person ("User's sister Xochitl…"; see
--   src/memory/extraction-prompt.ts). The query is parsed with websearch_to_tsquery, where every
--   word must match: with 'simple', the stop words of a natural query ("who is Xochitl?",
--   "my sister") would have to appear verbatim and nearly every such query would find nothing.
-- - Stemming matches "works"/"work", "hiking"/"hike". Names and rare words stay findable: a
--   word the stemmer does not know is stemmed the same way in the document and the query
--   (the parser itself is language-neutral, so "Zoë" or "東京" are tokens too).
-- - Cost: names that are English stop words ("Will") are not matched by words, only by
--   meaning; the vector side of the search still covers them.
-- The query side must use the same configuration (store.ts TEXT_SEARCH_CONFIG).
--
-- Stored, not an expression index: ranking reads the vector of every match of the user's layer,
-- and recomputing to_tsvector costs ~10 µs a row (measured: ~0.8 s vs ~36 ms for a 50k-row user
-- and a word in every row, PostgreSQL 15). Adding the column rewrites the table once (and
-- rebuilds its indexes); on a large existing table run this migration in a maintenance window.
ALTER TABLE "memories" ADD COLUMN "search_tsv" tsvector
  GENERATED ALWAYS AS (to_tsvector('english'::regconfig, "content")) STORED;

-- One index for both layers: the per-user and per-instance btree indexes narrow each search to
-- one layer, this one to the rows containing the words (the planner combines them).
CREATE INDEX "memories_search_tsv_idx" ON "memories" USING gin ("search_tsv");
