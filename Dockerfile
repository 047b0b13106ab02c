# syntax=docker/dockerfile:1
# A container image of one dockerhub-build-status node, for volunteers who run containers.
# Multi-stage: the official Rust image builds the binary; a distroless runtime (glibc,
# CA certificates, no shell, no package manager) runs it as a non-root user.
#
#   docker build -t dockerhub-build-status .
#   docker run -d --name dbs -p 8080:8080 --stop-timeout 20 --read-only --cap-drop ALL \
#     -v dbs-state:/var/lib/dockerhub-build-status \
#     dockerhub-build-status --public-url https://badges.example.org
#
# Flags after the image name go to the node; see docs/OPERATIONS.md.
#
# Both base images are build arguments, for machines that cannot pull them (CI builds a
# Debian 12 root file system with mmdebstrap, tests/container.rs): BUILD_IMAGE needs Rust
# (Cargo.toml's rust-version or newer), RUNTIME_IMAGE Debian 12's glibc. BINARY=prebuilt
# skips the compilation and takes the folder `prebuilt/` of the build context instead: the
# binary, built against Debian 12's glibc or an older one, as `prebuilt/dockerhub-build-status`,
# and an empty folder `prebuilt/state/`.
#
#   podman build --build-arg BINARY=prebuilt --build-arg RUNTIME_IMAGE=localhost/base .

# Cargo.toml's rust-version or newer; the version CI builds with.
ARG RUST_VERSION=1.95
ARG BUILD_IMAGE=docker.io/library/rust:${RUST_VERSION}-slim-bookworm
# Debian 12 like the build image, so the glibc the binary was linked against is there.
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
ARG BINARY=compiled

FROM ${BUILD_IMAGE} AS compiled
WORKDIR /src
COPY . .
# The cache mounts keep downloaded crates and compiled dependencies between builds; the
# binary is copied out because the target folder is a mount that the next stage cannot see.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
 && install -D -m 0755 target/release/dockerhub-build-status /out/dockerhub-build-status \
 && install -d -m 0700 /out/state

FROM scratch AS prebuilt
COPY prebuilt/ /out/

# The stage named by BINARY; the other is never built.
FROM ${BINARY} AS binary

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="dockerhub-build-status" \
      org.opencontainers.image.description="A node of a federated network of badge servers for Docker Hub images" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"
# The binary and the network's bootstrap list stay root's: the node cannot change them.
COPY --from=binary /out/dockerhub-build-status /usr/local/bin/dockerhub-build-status
COPY peers.toml /etc/dockerhub-build-status/peers.toml
# The state folder is the node user's: a named volume mounted here starts as a copy of it,
# with its owner, so the node can write its key pair and state without root.
COPY --from=binary --chown=65532:65532 /out/state /var/lib/dockerhub-build-status
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
# want a check can probe GET /health on port 8080 over HTTP themselves; its "status" is
# "degraded" while Docker Hub fails this node.
ENTRYPOINT ["/usr/local/bin/dockerhub-build-status"]
