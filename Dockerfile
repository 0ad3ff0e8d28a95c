# syntax=docker/dockerfile:1
# rotor: build with the Rust toolchain, run on distroless (glibc, CA certificates,
# no shell, no package manager) as a non-root user.
#
#   docker build -t rotor .
#   docker run -e ROTOR__DATABASE__URL=postgres://rotor:rotor@db/rotor -p 8080:8080 rotor
#
# Every setting comes from ROTOR__SECTION__KEY environment variables (see
# config/default.toml); the image only sets the bind address.

ARG RUST_VERSION=1.88

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so that a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src tests/api tests/store \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs tests/api/main.rs tests/store/main.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY config config
COPY migrations migrations
COPY src src
# Make cargo see the real sources as newer than the placeholder build.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && install -D -m 0755 target/release/rotor /out/rotor

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /out/rotor /usr/local/bin/rotor
# Listen on every interface inside the container; the compose file and the
# balancer decide what is reachable from outside.
ENV ROTOR__SERVER__BIND=0.0.0.0:8080 \
    ROTOR__LOG__FORMAT=json
EXPOSE 8080
# distroless' nonroot user (uid 65532); nothing in the image is writable by it
# except what a volume provides, so use PostgreSQL (or mount a volume for SQLite).
USER nonroot:nonroot
# A TERM from `docker stop` goes straight to rotor (PID 1), which drains and exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/rotor"]
CMD ["serve"]
