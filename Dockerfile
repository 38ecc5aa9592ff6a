# The pydsbase study image: one DataSHIELD study server (python -m r_server) next to its tables.
#
#   docker build -t pydsbase-study .                      # FROM debian:bookworm (see DEVELOPERS.md)
#   docker run -d -p 127.0.0.1:8080:8080 --ulimit nofile=20000:20000 \
#       -v /srv/study1:/data:ro -v /srv/study1-users.json:/run/pydsbase/users.json:ro \
#       pydsbase-study --name study1
#
# R and lme4 come from Debian; rpy2 is pinned (3.5.17, the version that works with bookworm's R 4.2.2)
# and built in cffi ABI mode, so the image needs no compiler. pip trusts the system CA store (which
# includes /usr/local/share/ca-certificates of the base image). No BuildKit-only syntax.
ARG BASE_IMAGE=debian:bookworm
FROM ${BASE_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    RPY2_CFFI_MODE=ABI \
    R_HOME=/usr/lib/R \
    PATH=/opt/venv/bin:$PATH

# R, lme4 and Python from Debian; the apt lists are dropped in the same layer.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        r-base-core r-cran-lme4 r-cran-jsonlite python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv

# Dependencies first (from pyproject.toml only), so code changes do not re-install them.
COPY pyproject.toml /src/pyproject.toml
RUN python -c "import tomllib; p = tomllib.load(open('/src/pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['server']))" > /src/requirements.txt \
 && pip install -r /src/requirements.txt

COPY pydsbase /src/pydsbase
COPY r_server /src/r_server
RUN PYDSBASE_COMPILE=0 pip install --no-deps /src && rm -rf /src \
 && python -c "import r_server, pydsbase, rpy2.rinterface" \
 && useradd --system --uid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin study \
 && mkdir -p /data /run/pydsbase

USER study
WORKDIR /tmp
EXPOSE 8080

HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2).status != 200)"]

ENTRYPOINT ["python", "-m", "r_server", "--tables", "/data", "--host", "0.0.0.0", "--port", "8080", \
            "--users", "/run/pydsbase/users.json"]
CMD ["--name", "study"]
