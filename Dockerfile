# syntax=docker/dockerfile:1

# One image for every recsys process: `recsys node` (a host over NATS), `recsys gateway` (the HTTP
# API), `recsys start` (embedded, everything in one process, the gateway on port 8000), `recsys demo`
# and `recsys services`. The first argument picks the subcommand:
#
#   docker build -t recsys .
#   docker run --rm -p 127.0.0.1:8000:8000 recsys start
#   docker run --rm -e RECSYS_TRANSPORT=nats -e NATS_URL=nats://nats:4222 recsys node --actors user
#
# Options come from configs/config.yaml, then environment variables (RECSYS_TRANSPORT, NATS_URL,
# REDIS_URL, RECSYS_HOST_ID, ...), then flags. Mount another file and set RECSYS_CONFIG to replace it.

ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: compile TypeScript to dist/ -----------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# --ignore-scripts: `prepare` runs tsc, and the sources are not here yet; the build runs below.
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
# .dockerignore keeps node_modules, dist, tests and local data out of this copy.
COPY . .
RUN npm run build

# --- runtime: production dependencies and the compiled code only ---------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY configs ./configs

# The code stays root-owned and read-only to the process. data.dir (.data) is the one folder it
# writes: data sets, models and indexes (a volume in docker-compose.yml).
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node

# /metrics and /healthz of each host process (metrics.port), and the HTTP gateway (gateway.port).
EXPOSE 9464
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9464/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

ENTRYPOINT ["node", "bin/recsys.js"]
CMD ["node"]
