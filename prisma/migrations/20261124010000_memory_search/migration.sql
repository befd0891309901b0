-- Full-text side of hybrid memory search (src/memory/store.ts, searchLayerHybrid): a stored
-- tsvector of each memory's content and a GIN index over it.
--
-- Text search configuration 'english' (stemming + English stop words), not 'simple':
-- - Memories are written in English, in the third person ("User's pen pal Xochitl…"; see
--   src/memory/extraction-prompt.ts), and the query is parsed by websearch_to_tsquery, where
--   every word must match. With 'simple' the stop words of a natural question ("who", "is",
--   "my") must appear verbatim: on LoCoMo (dev subset, 760 questions) its full-text side
--   matched for 2 questions and hybrid recall@10 stayed at vector's 0.40; with 'english' it
--   matched for 145 and recall@10 rose to 0.46.
-- - Stemming matches "works"/"work", "hiking"/"hike". Names and rare words stay findable: the
--   parser is language-neutral ("Zoë", "東京" are tokens) and a word is stemmed the same way in
--   the memory and in the query.
-- - Cost: a name that is an English stop word ("Will") is found by meaning only.
-- The query side must use the same configuration (store.ts TEXT_SEARCH_CONFIG).
--
-- Stored, not an expression index: a word in most of a user's memories is matched row by row,
-- and recomputing to_tsvector costs ~10 µs a row (measured on PostgreSQL 15, 50k rows: ~0.8 s
-- vs ~36 ms for the stored column). Adding the column rewrites the table once (and rebuilds
-- its indexes, HNSW included): on a large existing table, run this in a maintenance window.
ALTER TABLE "memories" ADD COLUMN "search_tsv" tsvector
  GENERATED ALWAYS AS (to_tsvector('english'::regconfig, "content")) STORED;

-- One index for both layers. For a rare word the planner ANDs it with the per-user btree
-- (BitmapAnd); for a word in most of a user's rows it filters that user's rows instead.
CREATE INDEX "memories_search_tsv_idx" ON "memories" USING gin ("search_tsv");
