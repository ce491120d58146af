# syntax=docker/dockerfile:1
# The orchestrator image, also used by `twice serve` and `twice slack` (k8s/base): Node 20, the
# repository at /app with its production npm packages and the generated Prisma client. Runs as
# UID 10001 on a read-only root filesystem (tsx compiles into /tmp, an emptyDir in the manifests).
# Build from the repository root:
#   docker build -f k8s/images/orchestrator.Dockerfile -t twice-orchestrator:dev .
FROM node:20.19.6-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY prisma ./prisma
COPY prisma.config.ts ./
COPY workers/prisma-engine-stub ./workers/prisma-engine-stub
# generate never runs the schema engine; the stub stops the CLI's pre-flight download
RUN PRISMA_SCHEMA_ENGINE_BINARY=/app/workers/prisma-engine-stub/README \
    DATABASE_URL=postgresql://unused@127.0.0.1:1/unused \
    node_modules/.bin/prisma generate
COPY . .
# the Prisma CLI, TypeScript and the linters are build-time only
RUN npm prune --omit=dev --no-audit --no-fund

FROM node:20.19.6-bookworm-slim
ENV NODE_ENV=production \
    HOME=/tmp
WORKDIR /app
# owned by root and read-only to the runtime user: nothing under /app is written at run time
COPY --from=build /app /app
USER 10001:10001
ENTRYPOINT ["node_modules/.bin/tsx"]
CMD ["workers/orchestrator.ts"]
