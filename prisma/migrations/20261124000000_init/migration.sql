-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateExtension
CREATE EXTENSION IF NOT EXISTS "vector";

-- CreateEnum
CREATE TYPE "message_role" AS ENUM ('USER', 'ASSISTANT');

-- CreateEnum
CREATE TYPE "memory_category" AS ENUM ('FACT', 'PREFERENCE', 'EVENT', 'EMOTION', 'RELATION', 'OTHER');

-- CreateEnum
CREATE TYPE "memory_action" AS ENUM ('ADDED', 'UPDATED', 'SUPERSEDED', 'DELETED');

-- CreateEnum
CREATE TYPE "job_status" AS ENUM ('PENDING', 'RUNNING', 'DONE', 'DEAD');

-- CreateTable
CREATE TABLE "users" (
    "id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "personas" (
    "id" UUID NOT NULL,
    "slug" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT NOT NULL,
    "system_prompt" TEXT NOT NULL,
    "greeting" TEXT NOT NULL,
    "traits" JSONB NOT NULL DEFAULT '{}',
    "archived_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "personas_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "persona_instances" (
    "id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "persona_id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "persona_instances_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "chat_sessions" (
    "id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "instance_id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "chat_sessions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "messages" (
    "id" UUID NOT NULL,
    "session_id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "role" "message_role" NOT NULL,
    "content" TEXT NOT NULL,
    "client_message_id" TEXT,
    "reply_to_id" UUID,
    "model" TEXT,
    "prompt_tokens" INTEGER,
    "completion_tokens" INTEGER,
    "recall" JSONB,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "messages_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "memories" (
    "id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "instance_id" UUID,
    "source_message_id" UUID,
    "source_session_id" UUID,
    "content" TEXT NOT NULL,
    "content_hash" TEXT NOT NULL,
    "category" "memory_category" NOT NULL,
    "confidence" DOUBLE PRECISION,
    "embedding" vector(512),
    "embedding_model" TEXT NOT NULL,
    "superseded_by_id" UUID,
    "superseded_at" TIMESTAMPTZ(3),
    "expires_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "memories_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "memory_history" (
    "id" UUID NOT NULL,
    "memory_id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "instance_id" UUID,
    "action" "memory_action" NOT NULL,
    "old_content" TEXT,
    "new_content" TEXT,
    "actor_type" TEXT NOT NULL,
    "actor_id" TEXT,
    "job_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "memory_history_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "jobs" (
    "id" UUID NOT NULL,
    "kind" TEXT NOT NULL,
    "dedupe_key" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "status" "job_status" NOT NULL DEFAULT 'PENDING',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "max_attempts" INTEGER NOT NULL DEFAULT 5,
    "run_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "locked_at" TIMESTAMPTZ(3),
    "locked_by" TEXT,
    "last_error" TEXT,
    "user_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "jobs_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "personas_slug_key" ON "personas"("slug");

-- CreateIndex
CREATE INDEX "persona_instances_persona_id_idx" ON "persona_instances"("persona_id");

-- CreateIndex
CREATE UNIQUE INDEX "persona_instances_user_id_persona_id_key" ON "persona_instances"("user_id", "persona_id");

-- CreateIndex
CREATE INDEX "chat_sessions_user_id_created_at_idx" ON "chat_sessions"("user_id", "created_at");

-- CreateIndex
CREATE INDEX "chat_sessions_instance_id_idx" ON "chat_sessions"("instance_id");

-- CreateIndex
CREATE UNIQUE INDEX "messages_reply_to_id_key" ON "messages"("reply_to_id");

-- CreateIndex
CREATE INDEX "messages_session_id_created_at_idx" ON "messages"("session_id", "created_at");

-- CreateIndex
CREATE UNIQUE INDEX "messages_user_id_client_message_id_key" ON "messages"("user_id", "client_message_id");

-- CreateIndex
CREATE INDEX "memory_history_memory_id_created_at_idx" ON "memory_history"("memory_id", "created_at");

-- CreateIndex
CREATE INDEX "memory_history_user_id_created_at_idx" ON "memory_history"("user_id", "created_at");

-- CreateIndex
CREATE UNIQUE INDEX "jobs_dedupe_key_key" ON "jobs"("dedupe_key");

-- AddForeignKey
ALTER TABLE "persona_instances" ADD CONSTRAINT "persona_instances_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "persona_instances" ADD CONSTRAINT "persona_instances_persona_id_fkey" FOREIGN KEY ("persona_id") REFERENCES "personas"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "chat_sessions" ADD CONSTRAINT "chat_sessions_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "chat_sessions" ADD CONSTRAINT "chat_sessions_instance_id_fkey" FOREIGN KEY ("instance_id") REFERENCES "persona_instances"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "messages" ADD CONSTRAINT "messages_session_id_fkey" FOREIGN KEY ("session_id") REFERENCES "chat_sessions"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "messages" ADD CONSTRAINT "messages_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "messages" ADD CONSTRAINT "messages_reply_to_id_fkey" FOREIGN KEY ("reply_to_id") REFERENCES "messages"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "memories" ADD CONSTRAINT "memories_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "memories" ADD CONSTRAINT "memories_instance_id_fkey" FOREIGN KEY ("instance_id") REFERENCES "persona_instances"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- ---------------------------------------------------------------------------------------------
-- Hand-written: indexes Prisma's schema language cannot express. Keep them when diffing.
-- ---------------------------------------------------------------------------------------------

-- Per-layer btree indexes. Profile reads filter by user; relationship reads by instance.
CREATE INDEX "memories_profile_user_idx" ON "memories" ("user_id", "created_at" DESC)
  WHERE "instance_id" IS NULL;
CREATE INDEX "memories_relationship_instance_idx" ON "memories" ("instance_id", "created_at" DESC)
  WHERE "instance_id" IS NOT NULL;
CREATE INDEX "memories_user_idx" ON "memories" ("user_id");

-- Approximate nearest neighbour per layer, over live rows only.
CREATE INDEX "memories_profile_hnsw_idx" ON "memories" USING hnsw ("embedding" vector_cosine_ops)
  WHERE "instance_id" IS NULL AND "superseded_by_id" IS NULL;
CREATE INDEX "memories_relationship_hnsw_idx" ON "memories" USING hnsw ("embedding" vector_cosine_ops)
  WHERE "instance_id" IS NOT NULL AND "superseded_by_id" IS NULL;

-- Exact-duplicate guard: one live memory per (user, layer, normalised content).
CREATE UNIQUE INDEX "memories_live_content_key" ON "memories"
  ("user_id", COALESCE("instance_id", '00000000-0000-0000-0000-000000000000'::uuid), "content_hash")
  WHERE "superseded_by_id" IS NULL;

-- Job claiming: due pending jobs, and running jobs whose claim may have expired.
CREATE INDEX "jobs_pending_run_at_idx" ON "jobs" ("run_at") WHERE "status" = 'PENDING';
CREATE INDEX "jobs_running_locked_at_idx" ON "jobs" ("locked_at") WHERE "status" = 'RUNNING';
