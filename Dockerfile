# One image for every Helm service; the command picks the service (see docker-compose.yml).

FROM node:20-slim AS dashboard
WORKDIR /src/services/gateway/web
COPY services/gateway/web/package.json services/gateway/web/package-lock.json services/gateway/web/build.mjs ./
RUN npm ci --no-audit --no-fund && node build.mjs

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HELM_LOG_JSON=true
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared shared
COPY services services
COPY --from=dashboard /src/services/gateway/static/vendor services/gateway/static/vendor
RUN pip install --no-cache-dir . && useradd --system --uid 10001 helm
USER helm
EXPOSE 8000 9101 9102 9103 9104
CMD ["python", "-m", "services.gateway"]
