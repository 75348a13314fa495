# syntax=docker/dockerfile:1
#
# keycard in a container: `docker build -t keycard .` then
#   docker run -p 5000:5000 -v keycard-data:/data keycard
# See docs/deployment.md (environment, secrets, health checks, what was tested).

# --- build -------------------------------------------------------------------------------------
# The Rust version of `rust-version` in Cargo.toml; the same Debian release as the runtime image,
# so the binary links against the glibc it runs with.
FROM rust:1.94-trixie AS builder
WORKDIR /src
COPY . .
# The registry and target caches survive between builds (BuildKit); the binary is copied out of
# the cached target directory, which is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin keycard \
    && install -D -m 0755 target/release/keycard /out/keycard

# --- run ---------------------------------------------------------------------------------------
FROM debian:trixie-slim
# curl only for HEALTHCHECK; ca-certificates for TLS to PostgreSQL or Redis.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 keycard \
    && useradd --system --uid 10001 --gid keycard --home-dir /data --no-create-home --shell /usr/sbin/nologin keycard \
    && install -d -m 0700 -o keycard -g keycard /data
COPY --from=builder /out/keycard /usr/local/bin/keycard

# The SQLite database and the generated JWT secret (mode 0600) live in the volume. Set
# KEYCARD_JWT_SECRET (or mount a secret file and point KEYCARD_SECRET_FILE at it) to share one
# secret between containers; KEYCARD_DATABASE_URL=postgres://... for several instances.
ENV KEYCARD_BIND=0.0.0.0:5000 \
    KEYCARD_DATABASE_URL=sqlite:///data/keycard.db \
    KEYCARD_SECRET_FILE=/data/keycard.secret \
    KEYCARD_LOG_FORMAT=json
VOLUME ["/data"]
WORKDIR /data
USER keycard:keycard
EXPOSE 5000

# Liveness over plain HTTP on the container's own port. With KEYCARD_TLS_CERT set, override it:
#   --health-cmd 'curl -fsS -k https://127.0.0.1:5000/healthz'
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:5000/healthz"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/keycard"]
CMD ["serve"]
