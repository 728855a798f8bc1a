# authbroker container image: the binary alone on distroless, as non-root.
#
#   docker build -t authbroker:0.1.0 .
#
# The Helm chart (helm/authbroker) relies on what this file sets: the binary at
# /usr/local/bin/authbroker as the entrypoint, user and group 65532, gRPC on
# 50051. It mounts its config at /etc/authbroker/config and secrets at
# /etc/authbroker/secrets, and the root filesystem can be read-only.

# Planner: the workspace's skeleton. Manifests, lock file, build script and
# proto stay as they are; every other Rust file becomes a stub, and everything
# else goes. The skeleton changes only when dependencies or file names do, so
# the builder's dependency layer below survives ordinary code changes — and
# every target the manifests declare (tests, benches) still has its file.
FROM rust:1.95-bookworm AS planner
WORKDIR /src
COPY . .
RUN export STUB='fn main() {}' \
    && find . -type f -name '*.rs' ! -name build.rs -exec sh -c 'echo "$STUB" > "$1"' _ {} \; \
    && find . -type f ! -name '*.rs' ! -name Cargo.toml ! -name Cargo.lock \
         ! -path './proto/*' ! -path './.cargo/*' ! -name 'rust-toolchain*' -delete

FROM rust:1.95-bookworm AS builder
WORKDIR /build
# Dependencies, built against the stubs: the slow, cached layer.
COPY --from=planner /src ./
RUN cargo build --release --locked --bin authbroker
# The service itself. COPY keeps the files' own modification times, which may
# be older than the stubs' build: touch them so cargo rebuilds the crates.
COPY . .
RUN find . -path ./target -prune -o -name '*.rs' -exec touch {} + \
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
