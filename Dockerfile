# sluice-controller image: built on Debian 12, run on debian:12-slim as a non-root user.
#   docker build -t ghcr.io/sluice-io/sluice-controller:0.1.0 .
# tests/install checks that the runtime packages below provide every shared library the
# controller binary loads (ldd), and that the build packages are those scripts/install-deps.sh
# installs.

FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake ninja-build pkg-config \
      libcpprest-dev nlohmann-json3-dev libyaml-cpp-dev libgit2-dev libspdlog-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DSLUICE_BUILD_TESTS=OFF -DSLUICE_BUILD_BENCH=OFF \
 && cmake --build /build --target sluice-controller \
 && strip /build/src/main/sluice-controller \
 && /build/src/main/sluice-controller --version

FROM debian:12-slim
# Runtime shared libraries of the binary (their own dependencies come with them), and CA
# certificates for HTTPS git remotes, Prometheus and the API server.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates \
      libcpprest2.10 \
      libgit2-1.5 \
      libyaml-cpp0.7 \
      libspdlog1.10 \
      libfmt9 \
      libssl3 \
      libstdc++6 \
      libgcc-s1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 sluice \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin sluice
COPY --from=build /build/src/main/sluice-controller /usr/local/bin/sluice-controller
USER 65532:65532
# Metrics, health probes, git webhooks.
EXPOSE 8080 8081 8082
ENTRYPOINT ["/usr/local/bin/sluice-controller"]
