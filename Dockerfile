# Warden's service image. docker-compose.yml runs it in NATS mode (WARDEN_NATS_URL); without a NATS URL
# it runs embedded, with its SQLite state in /data.
#
#   docker build -t warden .
#   docker run --rm -e WARDEN_NATS_URL=nats://warden:<password>@nats-host:4222 -p 8080:8080 warden

# Dependencies are installed with the full image, which has the tool chain in case better-sqlite3 has to
# be compiled; the runtime image only gets the result.
FROM node:20-bookworm AS dependencies
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production \
    WARDEN_DATA_DIR=/data \
    WARDEN_HTTP_HOST=0.0.0.0 \
    WARDEN_HTTP_PORT=8080
COPY --from=dependencies /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY src ./src
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
# SIGTERM: stop intake, finish in-flight work, persist, drain the NATS connection, exit 0.
STOPSIGNAL SIGTERM
# `npm start` without npm in between, so that the signal reaches Node; tsx runs the TypeScript sources.
CMD ["node", "--import", "tsx", "src/main.ts"]
