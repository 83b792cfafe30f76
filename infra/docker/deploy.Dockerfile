# syntax=docker/dockerfile:1.7
# deploy: a one-shot job that deploys the StreamAnchor contract (infra/stack/src/deploy.ts).
# Build from the repository root:  docker build -f infra/docker/deploy.Dockerfile .

FROM node:20-bookworm-slim AS build
ENV CI=true \
    COREPACK_ENABLE_DOWNLOAD_PROMPT=0 \
    PNPM_HOME=/pnpm
RUN corepack enable
WORKDIR /app
COPY . .
# The deploy script lives in infra/stack, so it takes the stack's dependency closure.
# `streamanchor` is the workspace root: it brings tsx, the loader the script runs under.
RUN --mount=type=cache,id=pnpm-store,target=/pnpm/store \
    pnpm install --frozen-lockfile --store-dir /pnpm/store --filter "@streamanchor/stack..." --filter streamanchor
# The typed ABI (contracts/src/generated) is generated, not committed: forge (from npm) + solc-js.
RUN pnpm --filter @streamanchor/contracts build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /app /app
# Never run as root.
USER node
CMD ["node", "--import", "tsx", "infra/stack/src/deploy.ts"]
