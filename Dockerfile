# sluice: the host and its bundled plugins in one binary, on a small Debian runtime image.
#
# Targets (docker-compose.yml picks one with SLUICE_BUILD_TARGET):
#   runtime  (default) compiles the binary from this source tree in a Rust build stage; what
#            `docker compose up --build` builds for users.
#   prebuilt the same runtime stage with the binary `cargo build --release -p sluice` already made
#            on a Debian 12 host (target/release/sluice); what tests/compose/up uses, since the
#            tests have compiled it once already.
# Stages are ordered so that building `prebuilt` never needs the Rust image.

FROM debian:bookworm-slim AS runtime-base
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 1000 --user-group --home-dir /var/lib/sluice --no-create-home sluice \
    && install -d -m 0700 -o sluice -g sluice /var/lib/sluice
ENV SLUICE_DATA_DIR=/var/lib/sluice \
    SLUICE__SERVER__LISTEN=0.0.0.0:8080
VOLUME /var/lib/sluice
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=6 CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["sluice"]
CMD ["serve"]

FROM runtime-base AS prebuilt
COPY target/release/sluice /usr/local/bin/sluice
USER sluice

FROM rust:1.95-bookworm AS build
# librdkafka is built from source by rdkafka-sys with its own configure script: a C compiler and
# make (both in this image) are all it needs.
WORKDIR /src
COPY . .
# rust-toolchain.toml names the toolchain and the wasm32-wasip2 target; the plugins are built by
# host/plugin-artifacts/build.rs (every folder of plugins/bundled/) and embedded in the binary.
RUN rustup show active-toolchain && rustup target add wasm32-wasip2 \
    && cargo build --release -p sluice --locked \
    && cp target/release/sluice /usr/local/bin/sluice

FROM runtime-base AS runtime
COPY --from=build /usr/local/bin/sluice /usr/local/bin/sluice
USER sluice
