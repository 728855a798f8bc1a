# authbroker container image: the binary alone on distroless, as non-root.
#
#   docker build -t authbroker:0.1.0 .
#
# The Helm chart (helm/authbroker) relies on what this file sets: the binary at
# /usr/local/bin/authbroker as the entrypoint, user and group 65532, gRPC on
# 50051. It mounts its config at /etc/authbroker/config and secrets at
# /etc/authbroker/secrets, and the root filesystem can be read-only.

FROM rust:1.95-bookworm AS builder
WORKDIR /build

# Dependencies first, against stub sources: this slow layer is rebuilt only
# when the manifests, the lock file, build.rs or the proto files change.
COPY Cargo.toml Cargo.lock build.rs ./
COPY migrations/Cargo.toml migrations/
COPY proto proto
RUN mkdir -p src migrations/src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs migrations/src/lib.rs \
    && cargo build --release --locked --bin authbroker \
    && rm -rf src migrations/src

# The service itself. COPY keeps the files' own modification times, which may
# be older than the stubs' build: touch them so cargo rebuilds both crates.
COPY src src
COPY migrations/src migrations/src
RUN touch src/main.rs src/lib.rs migrations/src/lib.rs \
    && cargo build --release --locked --bin authbroker \
    && install -D -m 0755 target/release/authbroker /out/authbroker

# glibc, libgcc and CA certificates, no shell; the nonroot tag runs as 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="authbroker" \
      org.opencontainers.image.description="Brokers OAuth2 connections to external providers for the services of a cluster" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/authbroker /usr/local/bin/authbroker
USER 65532:65532
EXPOSE 50051
ENTRYPOINT ["/usr/local/bin/authbroker"]
CMD ["serve"]
