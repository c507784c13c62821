# authsvc in a container: Debian bookworm's Python 3.11, the project in a virtual environment,
# served by `authsvc serve` (granian, HTTPS) as the unprivileged user authsvc.
#
# The base image is made locally, without an image registry: deploy/build-base-image
# (debootstrap --variant=minbase bookworm, imported as authsvc-base:bookworm). Build with
# BuildKit; pip reaches PyPI from the build stage, and a CA bundle it should trust (a TLS proxy's,
# say) comes in as a build secret, which no layer keeps:
#
#   deploy/build-base-image
#   DOCKER_BUILDKIT=1 docker build --network host \
#       --secret id=pip_ca,src=/etc/ssl/certs/ca-certificates.crt -t authsvc .
#
# First start (certificates for the names clients use, the database, the first admin), then
# serve; see the README, "Containers".
ARG BASE=authsvc-base:bookworm

FROM ${BASE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_DEFAULT_TIMEOUT=120
# One step, no COPY: every layer costs a full copy under the vfs storage driver. The build
# context (.dockerignore: the package, pyproject.toml, README.md) is mounted, writable for
# setuptools, and the CA bundle for this step only; without it pip trusts its own (certifi).
RUN --mount=type=bind,target=/src,rw \
    --mount=type=secret,id=pip_ca,required=false \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
 && python3 -m venv /opt/authsvc \
 && /opt/authsvc/bin/pip install /src \
 && /opt/authsvc/bin/pip uninstall -y pip

FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 authsvc \
 && useradd --system --uid 10001 --gid authsvc --home-dir /var/lib/authsvc \
        --shell /usr/sbin/nologin authsvc \
 && install -d -o authsvc -g authsvc -m 0700 /var/lib/authsvc \
        /var/lib/authsvc/certs /var/lib/authsvc/instance
COPY --from=build /opt/authsvc /opt/authsvc
ENV PATH=/opt/authsvc/bin:$PATH \
    AUTHSVC_CERTS_DIR=/var/lib/authsvc/certs \
    AUTHSVC_INSTANCE=/var/lib/authsvc/instance \
    AUTHSVC_PORT=5001 \
    PYTHONDONTWRITEBYTECODE=1
VOLUME ["/var/lib/authsvc/certs", "/var/lib/authsvc/instance"]
WORKDIR /var/lib/authsvc
USER authsvc:authsvc
EXPOSE 5001
# Alive when /healthz answers 200 over HTTPS signed by the CA in the certificate volume (the
# certificate's names are not checked: it need not name 127.0.0.1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import os, ssl, urllib.request as u\nc = ssl.create_default_context(cafile=os.environ['AUTHSVC_CERTS_DIR'] + '/ca.pem')\nc.check_hostname = False\nu.urlopen('https://127.0.0.1:%s/healthz' % os.environ['AUTHSVC_PORT'], context=c, timeout=4)"]
ENTRYPOINT ["authsvc"]
CMD ["serve", "--host", "0.0.0.0"]
