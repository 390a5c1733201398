# syntax=docker/dockerfile:1
# Build stage: compile TypeScript with the dev dependencies.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
COPY bench ./bench
RUN npm run build && npm prune --omit=dev

# Runtime stage: the compiled service, production dependencies, a non-root user.
FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    PORT=8080 \
    GATEHOUSE_DATA_DIR=/var/lib/gatehouse
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
RUN mkdir -p /var/lib/gatehouse && chown node:node /var/lib/gatehouse
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))"
# --disable-proto=delete: no `__proto__` accessor, so a client string used as a key path
# cannot reach Object.prototype (defence in depth; docs/security.md).
# --import preload.js: OpenTelemetry, when OTEL_EXPORTER_OTLP_ENDPOINT is set, must patch pg and http
# before they load (src/observability/preload.ts); without the variable it loads nothing.
CMD ["node", "--disable-proto=delete", "--import", "./dist/src/observability/preload.js", "dist/src/main.js"]
