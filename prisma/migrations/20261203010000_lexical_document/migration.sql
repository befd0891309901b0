-- The lexical document of a memory (src/memory/store.ts, lexical side of recall): its content
-- plus its date in words, built in ONE place, `memory_search_document`, and kept current by a
-- trigger on every insert and on every update of the columns it reads, whatever code path
-- writes the row (chat extraction, memory edits, re-embedding, imports, bulk loads).
--
-- Why the date in words: "what did I tell you in May?", "last summer", "on a Sunday" share no
-- word with "User adopted a puppy" unless the memory's date is in its document. The date is the
-- memory's created_at (when the user told it), in UTC: month name, year, weekday and season
-- (northern-hemisphere meteorological seasons). A later column with the date an event happened
-- goes into this one function as a third argument.
--
-- Why one configuration, 'english', also for other languages: the parser keeps any script's
-- words as words ("entrevista", "Zoë", "東京") and the English stemmer treats a foreign word the
-- same way in the memory and in the query, so with any-word matching (the query is an OR of
-- its lexemes, weighted by BM25's IDF) a Portuguese memory is found by a Portuguese question.
-- A second 'simple' lexeme set beside it would count every English word twice (stemmed and
-- unstemmed) and make every other language's stop words match. What is lost: a foreign word
-- that is an English stop word ("no", "will") is found by meaning only.
--
-- Converting the generated column to a plain one keeps its values; the UPDATE below rewrites
-- every row once (and the table's indexes): on a large table, run it in a maintenance window.

CREATE FUNCTION memory_date_words(at timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT to_char(at AT TIME ZONE 'UTC', 'FMMonth YYYY FMDay') || ' ' ||
    CASE extract(month FROM at AT TIME ZONE 'UTC')::int
      WHEN 12 THEN 'winter' WHEN 1 THEN 'winter' WHEN 2 THEN 'winter'
      WHEN 3 THEN 'spring' WHEN 4 THEN 'spring' WHEN 5 THEN 'spring'
      WHEN 6 THEN 'summer' WHEN 7 THEN 'summer' WHEN 8 THEN 'summer'
      ELSE 'autumn'
    END
$$;

-- The one definition of a memory's lexical document. Its configuration must be the query's
-- (store.ts TEXT_SEARCH_CONFIG).
CREATE FUNCTION memory_search_document(content text, created_at timestamptz) RETURNS tsvector
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT to_tsvector('english'::regconfig,
    content || ' ' || COALESCE(memory_date_words(created_at), ''))
$$;

ALTER TABLE "memories" ALTER COLUMN "search_tsv" DROP EXPRESSION;

-- Keep the document inside its row, as the embedding is (20261124020000): recall reads every
-- document of the layer it ranks, and a row carrying a 2 KB vector is over the TOAST threshold,
-- so an EXTENDED document was moved out of line — three TOAST fetches per row per search
-- (measured on PostgreSQL 15, 30 000-row layer: 355k buffer hits instead of 10k). MAIN keeps it
-- inline unless the row would not fit a page; the UPDATE below moves existing documents.
ALTER TABLE "memories" ALTER COLUMN "search_tsv" SET STORAGE MAIN;

CREATE FUNCTION memories_set_search_document() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  NEW.search_tsv := memory_search_document(NEW.content, NEW.created_at);
  RETURN NEW;
END
$$;

CREATE TRIGGER "memories_search_document"
  BEFORE INSERT OR UPDATE OF "content", "created_at" ON "memories"
  FOR EACH ROW EXECUTE FUNCTION memories_set_search_document();

UPDATE "memories" SET "search_tsv" = memory_search_document("content", "created_at");
