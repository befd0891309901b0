#!/usr/bin/env bash
# Proves the Dockerfile's commands work, without Docker: build, install production
# dependencies only in a clean copy, run the release command (migrations), start the built
# server with NODE_ENV=production against real Postgres, import a persona, serve a turn, and
# drain on SIGTERM with exit code 0. Needs TEST_DATABASE_URL (scripts/ci/with-postgres.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${TEST_DATABASE_URL:?run me through scripts/ci/with-postgres.sh}"

log() { echo "[production-smoke] $*" >&2; }
APP=$(mktemp -d /tmp/companion-prod.XXXXXX)
SERVER_PID="" FAKES_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill -9 "$SERVER_PID" 2>/dev/null || true
  [ -n "$FAKES_PID" ] && kill "$FAKES_PID" 2>/dev/null || true
  rm -rf "$APP"
}
trap cleanup EXIT

log "build (as the Dockerfile's build stage)"
npm run build --silent >/dev/null

log "production dependencies only, in a clean copy (as the runtime stage)"
cp package.json package-lock.json "$APP/"
cp -r dist "$APP/dist"
mkdir -p "$APP/prisma" && cp -r prisma/migrations "$APP/prisma/migrations"
(cd "$APP" && npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
cp -r node_modules/.prisma "$APP/node_modules/.prisma"
[ ! -e "$APP/node_modules/vitest" ] || { log "dev dependencies leaked into the image"; exit 1; }
for zero_config_only in @electric-sql/pglite @energetic-ai/embeddings prisma typescript; do
  [ ! -e "$APP/node_modules/$zero_config_only" ] || { log "$zero_config_only leaked into the image"; exit 1; }
done
log "production node_modules: $(du -sh "$APP/node_modules" | cut -f1)"

log "Voyage and OpenRouter fakes (the production providers; the image has no local embedder)"
# node itself (not npx), so that $FAKES_PID is the process that cleanup stops.
node --import tsx scripts/ci/provider-fakes.ts "$APP/fakes.env" > "$APP/fakes.log" 2>&1 &
FAKES_PID=$!
for _ in $(seq 1 150); do
  [ -s "$APP/fakes.env" ] && break
  kill -0 "$FAKES_PID" 2>/dev/null || { log "provider fakes did not start"; exit 1; }
  sleep 0.2
done
# shellcheck disable=SC1091
. "$APP/fakes.env"

export NODE_ENV=production DATABASE_URL="$TEST_DATABASE_URL" LOG_LEVEL=warn
export JWT_SECRET=production-smoke-secret-0123456789abcdef
free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
PORT=$(free_port)
# As fly.toml: /metrics on an internal port of its own (production refuses a public one).
METRICS_PORT=$(free_port)
export PORT METRICS_PORT HOST=127.0.0.1
cd "$APP"

log "release command: migrations"
node dist/src/db/migrate-cli.js

log "first persona"
cat > persona.json <<'JSON'
[{"slug": "smoke", "name": "Smokey", "description": "CI persona", "greeting": "Hi!",
  "systemPrompt": "You are Smokey, a friendly test companion.", "traits": {"tone": "calm"}}]
JSON
node dist/src/cli/personas.js import persona.json

log "start the server"
node dist/src/index.js > server.log 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 150); do
  curl -fsS "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat server.log; exit 1; }
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$PORT/ready"; echo
curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" > metrics.txt
grep -q 'companion_' metrics.txt || { log "no metrics on METRICS_PORT"; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/metrics")" = 404 ] || { log "/metrics is public"; exit 1; }

log "serve a turn"
TOKEN=$(node dist/src/cli/token.js --user 11111111-1111-4111-8111-111111111111)
gql() {
  curl -fsS "http://127.0.0.1:$PORT/graphql" -H "authorization: Bearer $TOKEN" \
    -H 'content-type: application/json' -d "$1"
}
PERSONA=$(gql '{"query":"{ personas { edges { node { id name } } } }"}' |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).data.personas.edges[0].node.id))')
SESSION=$(gql "{\"query\":\"mutation { startChat(input: {personaId: \\\"$PERSONA\\\"}) { session { id } } }\"}" |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).data.startChat.session.id))')
REPLY=$(gql "{\"query\":\"mutation { sendMessage(input: {sessionId: \\\"$SESSION\\\", content: \\\"I am a smoke tester\\\", clientMessageId: \\\"smoke-1\\\"}) { reply { content } } }\"}")
echo "$REPLY"
echo "$REPLY" | grep -q '"reply":{"content":"' || { log "no reply"; cat server.log; exit 1; }

# More than one turn through the bundle (it is built differently from the sources the test
# suite runs: scripts/bundle.ts): a streamed turn, memory search, clients' errors with their
# stable codes, a bad token.
must_contain() { # what, body, pattern
  echo "$2" | grep -q "$3" || { log "$1: expected $3 in: $2"; cat server.log; exit 1; }
}
log "a streamed turn (SSE)"
STREAM=$(curl -fsS -N --max-time 30 "http://127.0.0.1:$PORT/graphql" -H "authorization: Bearer $TOKEN" \
  -H 'content-type: application/json' -H 'accept: text/event-stream' \
  -d "{\"query\":\"subscription { sendMessageStream(input: {sessionId: \\\"$SESSION\\\", content: \\\"Tell me more\\\", clientMessageId: \\\"smoke-2\\\"}) { __typename ... on ReplyDelta { text } ... on ReplyDone { turn { reply { content } } } } }\"}")
must_contain "stream" "$STREAM" '"__typename":"ReplyDelta"'
must_contain "stream" "$STREAM" '"__typename":"ReplyDone"'
log "memory search"
must_contain "search" "$(gql '{"query":"{ profileMemories(search: \"smoke tester\", first: 5) { edges { score node { content } } } }"}')" '"profileMemories":{"edges":\['
log "clients' errors keep their codes"
must_contain "malformed id" "$(gql '{"query":"mutation { sendMessage(input: {sessionId: \"not-an-id\", content: \"hi\", clientMessageId: \"smoke-3\"}) { reply { content } } }"}')" '"code":"BAD_USER_INPUT"'
must_contain "foreign session" "$(TOKEN=$(node dist/src/cli/token.js --user 22222222-2222-4222-8222-222222222222) gql "{\"query\":\"mutation { sendMessage(input: {sessionId: \\\"$SESSION\\\", content: \\\"hi\\\", clientMessageId: \\\"smoke-4\\\"}) { reply { content } } }\"}")" '"code":"NOT_FOUND"'
must_contain "unknown field" "$(curl -sS "http://127.0.0.1:$PORT/graphql" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"query":"{ nope }"}')" '"code":"GRAPHQL_VALIDATION_FAILED"'
log "a bad token"
must_contain "bad token" "$(curl -sS "http://127.0.0.1:$PORT/graphql" -H 'authorization: Bearer not.a.token' -H 'content-type: application/json' -d '{"query":"{ viewer { id } }"}')" '"code":"UNAUTHENTICATED"'

log "SIGTERM drains and exits 0"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" && rc=0 || rc=$?
SERVER_PID=""
[ "$rc" = 0 ] || { log "server exited $rc"; cat server.log; exit 1; }
log "ok"
