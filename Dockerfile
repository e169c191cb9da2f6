# Dockerfile -- the sandboxd image: Debian 12 slim, built in one stage, run from another.
#
#   scripts/docker-base.sh                # only where no registry has debian:bookworm-slim
#   docker build -t sandboxd .
#   docker run -p 8080:8080 -e AUTH_TOKEN=... \
#       --security-opt seccomp=deploy/docker/seccomp.json sandboxd
#
# Both stages install their packages with scripts/install-deps.sh from scripts/packages.txt,
# the same list a host uses (build stage: group "build"; runtime stage: "runtime" and "image"),
# and tests/e2e/test_packaging.py checks this file against that list. The build stage installs
# with `cmake --install`, so the image has the layout any install has (bin/sandboxd finds
# ../share/sandboxd/chromium-profile). Why the seccomp profile: deploy/docker/README.md.
# scripts/check-docker.sh builds and runs this image in CI.

ARG DEBIAN_IMAGE=debian:bookworm-slim

# ---- build: compilers and -dev packages; only the server is built
FROM ${DEBIAN_IMAGE} AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/packages.txt scripts/
RUN ./scripts/install-deps.sh build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr/local \
    && cmake --build build -j"$(nproc)" --target sandboxd \
    && DESTDIR=/out cmake --install build --strip

# ---- runtime: the libraries, Chromium, Python and nothing to compile with
FROM ${DEBIAN_IMAGE} AS runtime
COPY scripts/install-deps.sh scripts/packages.txt /tmp/deps/
RUN /tmp/deps/install-deps.sh runtime image \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old \
        /var/log/apt /var/log/dpkg.log /tmp/deps
RUN useradd --system --user-group --uid 10001 --home-dir /var/lib/sandboxd \
        --shell /usr/sbin/nologin sandboxd \
    && install -d -o sandboxd -g sandboxd -m 0750 /var/lib/sandboxd
COPY --from=build /out/usr/local/ /usr/local/

ENV HOST=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/var/lib/sandboxd \
    CHROMIUM_PATH=/usr/bin/chromium \
    PYTHON_PATH=/usr/bin/python3
USER sandboxd
WORKDIR /var/lib/sandboxd
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${PORT}/health" >/dev/null || exit 1
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/sandboxd"]
