# syntax=docker/dockerfile:1.7
# rtc-relay: terminates the WebRTC data channels (node-datachannel), one UDP port for every session.
# Build from the repository root:  docker build -f infra/docker/rtc-relay.Dockerfile .
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
# Only this service's dependency closure is installed.
# `streamanchor` is the workspace root: it brings tsx, the loader the service runs under.
RUN --mount=type=cache,id=pnpm-store,target=/pnpm/store \
    pnpm install --frozen-lockfile --store-dir /pnpm/store --filter "@streamanchor/rtc-relay..." --filter streamanchor
# The workspace's postinstall applies the libjuice#355 fix to node-datachannel's binary (TURN
# over TCP/TLS from Chromium); run it again so a skipped postinstall cannot ship without it.
RUN node --import tsx apps/rtc-relay/scripts/patch-native.ts

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    ICE_BIND_ADDRESS=0.0.0.0 \
    ICE_UDP_PORT=40000
WORKDIR /app
COPY --from=build --chown=node:node /app /app
# Never run as root.
USER node
# Every session is muxed on this one UDP port: publish it (see docker-compose.yml).
EXPOSE 40000/udp
CMD ["node", "--import", "tsx", "apps/rtc-relay/src/main.ts"]
