-- Account erasure (src/account/erase.ts) and forget-everything delete or close a user's jobs by
-- user_id; without an index each would scan the whole queue, finished jobs included.
CREATE INDEX "jobs_user_id_idx" ON "jobs"("user_id");
