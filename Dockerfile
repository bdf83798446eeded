# Warden's service image: the compiled service on Node 22 LTS, with the `warden` CLI on PATH.
# docker-compose.yml runs it in NATS mode (WARDEN_NATS_URL); without a NATS URL it runs embedded, with its
# SQLite state in /data. docs/deployment.md has the whole deployment.
#
#   docker build -t warden .
#   docker run --rm -p 127.0.0.1:8080:8080 -e WARDEN_OPERATOR_TOKENS=<token> warden
#
# It listens on 0.0.0.0 inside the container: without WARDEN_OPERATOR_TOKENS every change is refused (403),
# since no request comes from loopback there; compose refuses to start without tokens.

# Build: the full image has the tool chain in case better-sqlite3 has to be compiled. `npm run build`
# compiles src/ to dist/; then the development dependencies go.
FROM node:22-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci && npm cache clean --force
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production \
    WARDEN_DATA_DIR=/data \
    WARDEN_HTTP_HOST=0.0.0.0 \
    WARDEN_HTTP_PORT=8080
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The CLI: `docker compose exec warden warden status` (WARDEN_URL defaults to http://127.0.0.1:8080).
RUN printf '#!/bin/sh\nexec node /app/dist/cli/bin.js "$@"\n' > /usr/local/bin/warden \
    && chmod 755 /usr/local/bin/warden \
    && mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
# Ready: Warden started, and connected to NATS in NATS mode. No curl in the slim image: Node asks.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.WARDEN_HTTP_PORT}/readyz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM: stop intake, finish in-flight work, persist, drain the NATS connection, exit 0.
STOPSIGNAL SIGTERM
# Node itself is PID 1's command (no npm in between), so that the signal reaches it.
CMD ["node", "dist/main.js"]
