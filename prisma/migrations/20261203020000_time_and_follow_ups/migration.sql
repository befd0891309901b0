-- Time as a first-class part of memory (README "Time and follow-ups").

-- The user's IANA time zone: "today" in the prompt, date resolution in extraction, and when a
-- follow-up is due. Validated by the API (src/time/zone.ts); 'UTC' until the user sets one.
ALTER TABLE "users" ADD COLUMN "time_zone" TEXT NOT NULL DEFAULT 'UTC';

-- When the remembered thing happened or will happen (created_at is when it was stored).
-- A date-only event is stored as the start of that day in the user's zone.
ALTER TABLE "memories" ADD COLUMN "occurred_at" TIMESTAMPTZ(3);
CREATE INDEX "memories_user_occurred_at_idx" ON "memories" ("user_id", "occurred_at")
  WHERE "occurred_at" IS NOT NULL;

CREATE TYPE "follow_up_state" AS ENUM ('OPEN', 'ASKED', 'CLOSED', 'EXPIRED');
CREATE TYPE "follow_up_close_reason" AS ENUM ('ANSWERED', 'DISMISSED');

-- Open threads: an event memory with a future occurred_at, to be asked about once it is due.
-- They go with their memory (forget, delete) and with their user (account erasure).
CREATE TABLE "follow_ups" (
    "id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "memory_id" UUID NOT NULL,
    -- The memory's layer: NULL = profile (the first persona the user talks to asks), else only
    -- this persona instance asks.
    "instance_id" UUID,
    "state" "follow_up_state" NOT NULL DEFAULT 'OPEN',
    "due_at" TIMESTAMPTZ(3) NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "asked_at" TIMESTAMPTZ(3),
    "asked_instance_id" UUID,
    "asked_reply_id" UUID,
    "closed_at" TIMESTAMPTZ(3),
    "close_reason" "follow_up_close_reason",
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "follow_ups_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX "follow_ups_memory_id_key" ON "follow_ups"("memory_id");
CREATE INDEX "follow_ups_user_id_due_at_idx" ON "follow_ups"("user_id", "due_at");
CREATE INDEX "follow_ups_asked_reply_id_idx" ON "follow_ups"("asked_reply_id")
  WHERE "asked_reply_id" IS NOT NULL;

ALTER TABLE "follow_ups" ADD CONSTRAINT "follow_ups_user_id_fkey" FOREIGN KEY ("user_id")
  REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "follow_ups" ADD CONSTRAINT "follow_ups_memory_id_fkey" FOREIGN KEY ("memory_id")
  REFERENCES "memories"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "follow_ups" ADD CONSTRAINT "follow_ups_instance_id_fkey" FOREIGN KEY ("instance_id")
  REFERENCES "persona_instances"("id") ON DELETE CASCADE ON UPDATE CASCADE;
