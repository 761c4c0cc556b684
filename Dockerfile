FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY queues ./queues
COPY scripts ./scripts
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY mappings ./mappings
COPY assets ./assets
COPY fixtures ./fixtures
# DATA_DIR (blob store) as compose mounts it: a new named volume takes this directory's owner.
RUN mkdir -p /var/lib/second-opinion-bridge && chown node:node /var/lib/second-opinion-bridge
USER node
CMD ["node", "dist/src/main.js"]
