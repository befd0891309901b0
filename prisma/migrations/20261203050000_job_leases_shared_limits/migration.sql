-- Job claims become leases: the claimant renews lease_until while it works (heartbeat),
-- and a running job is claimed again only once its lease has lapsed.
ALTER TABLE "jobs" ADD COLUMN "lease_until" TIMESTAMPTZ(3);
-- Jobs claimed before this migration keep the old 5-minute claim timeout.
UPDATE "jobs" SET "lease_until" = "locked_at" + interval '5 minutes'
  WHERE "status" = 'RUNNING';
DROP INDEX IF EXISTS "jobs_running_locked_at_idx";
CREATE INDEX "jobs_running_lease_idx" ON "jobs" ("lease_until") WHERE "status" = 'RUNNING';
-- Pruning finished jobs after JOB_RETENTION_MS, oldest first.
CREATE INDEX "jobs_done_finished_at_idx" ON "jobs" ("finished_at") WHERE "status" = 'DONE';

-- Per-user token buckets shared by every server process (src/limits-store.ts). One row per
-- (user, limit); a row untouched for over a minute is a full bucket and is pruned.
CREATE TABLE "rate_limits" (
    "user_id" UUID NOT NULL,
    "kind" TEXT NOT NULL,
    "tokens" DOUBLE PRECISION NOT NULL,
    "admitted" BOOLEAN NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL,

    CONSTRAINT "rate_limits_pkey" PRIMARY KEY ("user_id", "kind")
);
CREATE INDEX "rate_limits_updated_at_idx" ON "rate_limits" ("updated_at");
