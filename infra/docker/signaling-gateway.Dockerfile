# syntax=docker/dockerfile:1.7
# signaling-gateway: the public HTTP API (WHIP-style signaling) and the demo page.
# Build from the repository root:  docker build -f infra/docker/signaling-gateway.Dockerfile .
# (docker-compose.yml does this.) Runs the TypeScript sources through tsx, as in development.

FROM node:20-bookworm-slim AS build
ENV CI=true \
    COREPACK_ENABLE_DOWNLOAD_PROMPT=0 \
    PNPM_HOME=/pnpm
RUN corepack enable
WORKDIR /app
# The whole workspace (minus what .dockerignore leaves out): pnpm's frozen lockfile must see
# every workspace manifest, and the sources are small.
COPY . .
# Only this service's dependency closure (plus the demo page and the contracts build tools) is installed.
# `streamanchor` is the workspace root: it brings tsx, the loader the service runs under.
RUN --mount=type=cache,id=pnpm-store,target=/pnpm/store \
    pnpm install --frozen-lockfile --store-dir /pnpm/store --filter "@streamanchor/signaling-gateway..." --filter "@streamanchor/web..." --filter "@streamanchor/contracts..." --filter streamanchor
# The typed ABI (contracts/src/generated) is generated, not committed: forge (from npm) + solc-js.
RUN pnpm --filter @streamanchor/contracts build
# The demo page the gateway serves at / (WEB_DIST_DIR).
RUN pnpm --filter @streamanchor/web build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    WEB_DIST_DIR=/app/apps/web/dist
WORKDIR /app
COPY --from=build --chown=node:node /app /app
# Never run as root.
USER node
EXPOSE 8080
CMD ["node", "--import", "tsx", "apps/signaling-gateway/src/main.ts"]
