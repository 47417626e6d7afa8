# One image for every FaaS Billing function and the API. Which one a container serves is chosen by
# the FUNCTION environment variable (collect, save, aggregate, price, forecast, notifications,
# deadletter, retention, api) or by the first argument; the migration Job runs the migrate command.
#
# test/image.test.ts replays the RUN steps of this file in a temporary directory (same commands,
# same order) and checks that the result answers /health/readiness: keep every step a plain shell
# command without Dockerfile-only tricks.

# ---- build: install every dependency and compile TypeScript to dist/
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY functions ./functions
COPY schema ./schema
COPY scripts ./scripts
RUN npx tsc -p tsconfig.build.json
# The web dashboard (served by the API at /): Vite builds web/ into web/dist.
COPY web ./web
RUN npx tsx scripts/build-web.ts

# ---- runtime: production dependencies and the compiled JavaScript only, as a non-root user
FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
# Where the compiled API looks for it (dist/functions/api → dist/web/dist).
COPY --from=build /app/web/dist ./dist/web/dist
# The node image's unprivileged user (uid/gid 1000), as the manifests' securityContext expects.
USER 1000:1000
ENV PORT=8080
EXPOSE 8080
ENTRYPOINT ["node", "dist/src/runtime/run-function.js"]
