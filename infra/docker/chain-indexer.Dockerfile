# syntax=docker/dockerfile:1.7
# chain-indexer: follows the StreamAnchor events over HTTP polling and sends receipts.
# Build from the repository root:  docker build -f infra/docker/chain-indexer.Dockerfile .
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
# Only this service's dependency closure (plus the contracts build tools) is installed.
# `streamanchor` is the workspace root: it brings tsx, the loader the service runs under.
RUN --mount=type=cache,id=pnpm-store,target=/pnpm/store \
    pnpm install --frozen-lockfile --store-dir /pnpm/store --filter "@streamanchor/chain-indexer..." --filter "@streamanchor/contracts..." --filter streamanchor
# The typed ABI (contracts/src/generated) is generated, not committed: forge (from npm) + solc-js.
RUN pnpm --filter @streamanchor/contracts build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /app /app
# Never run as root.
USER node
CMD ["node", "--import", "tsx", "apps/chain-indexer/src/main.ts"]
