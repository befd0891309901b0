# syntax=docker/dockerfile:1
# Multi-stage build for Fly.io (shared-cpu-1x, 256 MB). CI runs the same commands without
# Docker (scripts/ci/production-smoke.sh), since no Docker engine runs there.

FROM node:22-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY prisma ./prisma
COPY prisma.config.ts ./
# postinstall runs `prisma generate` (client + Pothos datamodel into src/generated).
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json fly.toml ./
COPY src ./src
COPY scripts ./scripts
# tsc, then the entry points the machine starts (server, worker, release command) become
# single-file bundles (scripts/bundle.ts: a faster wake-up from scale-to-zero).
RUN npm run build

FROM node:22-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only: no dev dependencies (the Prisma CLI, TypeScript, …) and no
# optional ones (embedded PGlite, the local embedder, GraphiQL: only zero-config development
# loads them, src/optional-deps.ts). Install scripts off; the generated Prisma client is
# copied from the build stage instead.
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/node_modules/.prisma ./node_modules/.prisma
COPY --from=build /app/dist ./dist
COPY prisma/migrations ./prisma/migrations
USER node
EXPOSE 8080
ENV PORT=8080
CMD ["node", "dist/src/index.js"]
