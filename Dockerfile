# syntax=docker/dockerfile:1
# Build stage: the same steps as the README's install (npm ci builds through `prepare`).
FROM node:22-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY connectors ./connectors
COPY bench ./bench
COPY scripts ./scripts
RUN npm ci --no-audit --no-fund
RUN npm prune --omit=dev

# Run stage: non-root, ledger on the /data volume.
FROM node:22-bookworm-slim
ENV NODE_ENV=production AVITO_SYNC_DB=/data/avito-sync.db PORT=8080 HOST=0.0.0.0 \
    MALLOC_ARENA_MAX=2
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
COPY templates ./templates
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>r.json()).then(h=>process.exit(h.status==='ok'?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "--max-semi-space-size=8", "dist/src/cli/main.js"]
CMD ["run"]
