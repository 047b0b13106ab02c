# syntax=docker/dockerfile:1
# A container image of one dockerhub-build-status node, for volunteers who run containers.
# Multi-stage: the official Rust image builds the binary; a distroless runtime (glibc,
# CA certificates, no shell, no package manager) runs it as a non-root user.
#
#   docker build -t dockerhub-build-status .
#   docker run -d --name dbs -p 8080:8080 --stop-timeout 20 \
#     -v dbs-state:/var/lib/dockerhub-build-status \
#     dockerhub-build-status --public-url https://badges.example.org
#
# Flags after the image name go to the node; see docs/OPERATIONS.md.

# Cargo.toml's rust-version or newer; the version CI builds with.
ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep downloaded crates and compiled dependencies between builds; the
# binary is copied out because the target folder is a mount that the next stage cannot see.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
 && install -D -m 0755 target/release/dockerhub-build-status /out/dockerhub-build-status \
 && install -d -m 0700 /out/state

# Debian 12 like the build image, so the glibc the binary was linked against is there.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="dockerhub-build-status" \
      org.opencontainers.image.description="A node of a federated network of badge servers for Docker Hub images" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"
# The binary and the network's bootstrap list stay root's: the node cannot change them.
COPY --from=build /out/dockerhub-build-status /usr/local/bin/dockerhub-build-status
COPY peers.toml /etc/dockerhub-build-status/peers.toml
# The state folder is the node user's: a named volume mounted here starts as a copy of it,
# with its owner, so the node can write its key pair and state without root.
COPY --from=build --chown=65532:65532 /out/state /var/lib/dockerhub-build-status
# Defaults as environment variables, not as CMD: flags given to `docker run` or compose's
# `command:` are added to these instead of replacing them (a flag beats its variable).
ENV DBS_LISTEN=0.0.0.0:8080 \
    DBS_STATE_DIR=/var/lib/dockerhub-build-status \
    DBS_PEERS=/etc/dockerhub-build-status/peers.toml
USER 65532:65532
EXPOSE 8080
VOLUME /var/lib/dockerhub-build-status
# SIGTERM starts the graceful shutdown: stop accepting, drain for up to 10 s, save state.
# Give it more than that before the SIGKILL: `docker run --stop-timeout 20`, compose's
# `stop_grace_period: 20s`.
STOPSIGNAL SIGTERM
# No HEALTHCHECK: the image has no shell and no curl to run one, and adding them would
# double its size and attack surface for little: Docker only marks an unhealthy container
# (it does not restart it), while the other nodes of the network probe this node's /health
# from outside, which is what decides whether browsers are sent here. Orchestrators that
# want a check can probe GET /health on port 8080 over HTTP themselves.
ENTRYPOINT ["/usr/local/bin/dockerhub-build-status"]
