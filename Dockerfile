# syntax=docker/dockerfile:1
# One image for every tongfa role (api, worker, scheduler, migrate, flower); the command chosen
# in docker-compose.yml decides the role. Two stages: the builder makes the project wheel from
# pyproject.toml and installs it into a venv; the final image is that venv on a slim Python,
# run as an unprivileged user. Both stages use the same base, so the venv's interpreter link
# stays valid when it is copied across.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/tongfa
COPY pyproject.toml setup.py ./
COPY orchestrator/ orchestrator/
COPY channels/ channels/
COPY workers/ workers/
COPY templates/ templates/
COPY examples/ examples/
# The wheel carries its own data: console templates and static files, the domain's word
# lists, the migrations, and templates/ and examples/ as tongfa_data (setup.py), all read
# through the installed packages. The check below runs from / so nothing of /src is seen.
# Flower is an operations tool, not a project dependency.
RUN /opt/tongfa/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/tongfa/bin/pip install /wheels/tongfa-*.whl "flower>=2.0,<3" \
 && cd / && /opt/tongfa/bin/python -c "from channels.templating import shipped; \
assert (shipped('templates') / 'website' / 'base.html').is_file(), 'templates/<kind>/ missing'; \
assert (shipped('examples') / 'release.yaml').is_file(), 'examples/ missing'" \
 && /opt/tongfa/bin/tongfa --help > /dev/null

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/tongfa/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TONGFA_VAR_DIR=/var/lib/tongfa
RUN groupadd --system --gid 10001 tongfa \
 && useradd --system --uid 10001 --gid tongfa --home-dir /var/lib/tongfa \
        --shell /usr/sbin/nologin tongfa \
 && mkdir -p /var/lib/tongfa/site /var/lib/tongfa/files \
 && chown -R tongfa:tongfa /var/lib/tongfa
COPY --from=builder /opt/tongfa /opt/tongfa
WORKDIR /var/lib/tongfa
USER 10001:10001
EXPOSE 8000
CMD ["uvicorn", "orchestrator.api.asgi:app", "--host", "0.0.0.0", "--port", "8000", "--workers", "4", \
     "--no-proxy-headers"]
