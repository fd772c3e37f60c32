# sluice, built from source: the host and its bundled plugins (wasm32-wasip2) in one build stage,
# then a small runtime image. Used by docker-compose.yml.
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

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/sluice --create-home sluice
COPY --from=build /usr/local/bin/sluice /usr/local/bin/sluice
USER sluice
ENV SLUICE_DATA_DIR=/var/lib/sluice \
    SLUICE__SERVER__LISTEN=0.0.0.0:8080
VOLUME /var/lib/sluice
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=6 CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["sluice"]
CMD ["serve"]
