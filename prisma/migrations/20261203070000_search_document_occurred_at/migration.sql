-- The lexical document (see 20261203010000_lexical_document) also holds the date an event
-- happened or will happen (`occurred_at`), in words, so "what did I do in May?" finds an event
-- told in April about May. Both dates are now put in words in the user's time zone: a date-only
-- event is stored as the start of that day in the user's zone, which in UTC can be the day
-- before (Auckland's midnight is 11:00 UTC of the previous day), so UTC words would name the
-- wrong weekday.
--
-- A zone Postgres does not know (the API validates zones with the JavaScript runtime's Intl,
-- whose zone list can differ from the database's) falls back to UTC instead of failing the write.

CREATE FUNCTION memory_date_words(at timestamptz, zone text) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
  local timestamp;
BEGIN
  IF at IS NULL THEN
    RETURN NULL;
  END IF;
  BEGIN
    local := at AT TIME ZONE COALESCE(zone, 'UTC');
  EXCEPTION WHEN invalid_parameter_value THEN
    local := at AT TIME ZONE 'UTC';
  END;
  RETURN to_char(local, 'FMMonth YYYY FMDay') || ' ' ||
    CASE extract(month FROM local)::int
      WHEN 12 THEN 'winter' WHEN 1 THEN 'winter' WHEN 2 THEN 'winter'
      WHEN 3 THEN 'spring' WHEN 4 THEN 'spring' WHEN 5 THEN 'spring'
      WHEN 6 THEN 'summer' WHEN 7 THEN 'summer' WHEN 8 THEN 'summer'
      ELSE 'autumn'
    END;
END
$$;

-- The one definition of a memory's lexical document, now with the event date and the zone.
-- Its configuration must be the query's (store.ts TEXT_SEARCH_CONFIG).
CREATE FUNCTION memory_search_document(
  content text, created_at timestamptz, occurred_at timestamptz, zone text
) RETURNS tsvector
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT to_tsvector('english'::regconfig,
    content || ' ' || COALESCE(memory_date_words(created_at, zone), '') || ' ' ||
    COALESCE(memory_date_words(occurred_at, zone), ''))
$$;

CREATE OR REPLACE FUNCTION memories_set_search_document() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  zone text;
BEGIN
  SELECT time_zone INTO zone FROM users WHERE id = NEW.user_id;
  NEW.search_tsv := memory_search_document(NEW.content, NEW.created_at, NEW.occurred_at, zone);
  RETURN NEW;
END
$$;

DROP TRIGGER "memories_search_document" ON "memories";
CREATE TRIGGER "memories_search_document"
  BEFORE INSERT OR UPDATE OF "content", "created_at", "occurred_at" ON "memories"
  FOR EACH ROW EXECUTE FUNCTION memories_set_search_document();

DROP FUNCTION memory_search_document(text, timestamptz);
DROP FUNCTION memory_date_words(timestamptz);

-- Rows with an event date, or a user outside UTC, get the new document.
UPDATE "memories" m SET "search_tsv" =
  memory_search_document(m."content", m."created_at", m."occurred_at", u."time_zone")
FROM "users" u
WHERE u."id" = m."user_id" AND (m."occurred_at" IS NOT NULL OR u."time_zone" <> 'UTC');
