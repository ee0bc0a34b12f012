# syntax=docker/dockerfile:1
# rulesd: a static binary (pure Go, no cgo: the SQLite driver is modernc.org/sqlite)
# on a distroless image that runs as the nonroot user (65532), as deploy/ expects.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t rulesd .

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so the download layer is cached until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/rulesd/rulesd/internal/version.Version=${VERSION}" \
      -o /out/rulesd ./cmd/rulesd

# static-debian12 has CA certificates (for graph.facebook.com and Slack) and the
# time zone database (for schedules and account time zones), and no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/rulesd /rulesd
USER nonroot
# listen: ":8080" — /metrics, /healthz, /readyz, the status page and the API.
EXPOSE 8080
ENTRYPOINT ["/rulesd"]
CMD ["run", "--config", "/etc/rulesd/rulesd.yaml"]
