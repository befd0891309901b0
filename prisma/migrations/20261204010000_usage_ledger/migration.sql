-- What each user costs (src/usage/ledger.ts): one row per user x UTC day x kind x model, whose
-- counts the work that used the provider adds to with INSERT ... ON CONFLICT DO UPDATE. The rows
-- a user can make per day are bounded by the models configured, not by the work done.
CREATE TABLE "usage_ledger" (
    "user_id" UUID NOT NULL REFERENCES "users"("id") ON DELETE CASCADE,
    -- The UTC calendar day of the work (budgets reset at 00:00 UTC).
    "day" DATE NOT NULL,
    -- chat | extraction | embedding
    "kind" TEXT NOT NULL CHECK ("kind" IN ('chat', 'extraction', 'embedding')),
    "model" TEXT NOT NULL,
    "requests" BIGINT NOT NULL DEFAULT 0,
    "input_tokens" BIGINT NOT NULL DEFAULT 0,
    "output_tokens" BIGINT NOT NULL DEFAULT 0,
    -- Requests whose tokens were estimated (offline providers count words; a provider that
    -- reported no usage), not reported by the provider.
    "estimated_requests" BIGINT NOT NULL DEFAULT 0,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT now(),

    CONSTRAINT "usage_ledger_pkey" PRIMARY KEY ("user_id", "day", "kind", "model")
);
-- The admin "top users by cost" ranking reads a window of days across users.
CREATE INDEX "usage_ledger_day_idx" ON "usage_ledger" ("day");
