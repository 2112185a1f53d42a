"""docker/: no Docker here, so the files are checked for what they must say."""

import re
from pathlib import Path

import yaml
from django.conf import settings

DOCKER = Path(settings.BASE_DIR) / "docker"


def test_compose_services_health_checks_and_volumes():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert {"web", "worker", "beat", "postgres", "redis"} <= set(services)
    for name in ("web", "worker", "beat", "postgres", "redis"):
        assert services[name].get("healthcheck", {}).get("test"), name
    assert services["web"]["command"][0] == "gunicorn"
    assert services["worker"]["command"][:4] == ["celery", "-A", "mk0r", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "mk0r", "beat"]
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        env = services[name]["environment"]
        assert env["DJANGO_SETTINGS_MODULE"] == "mk0r.settings.production"
        assert env["DATABASE_URL"].startswith("postgres://") and env["REDIS_URL"].startswith("redis://")
    named = set(compose["volumes"])
    assert {"pgdata", "redisdata", "appdata"} <= named
    mounted = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])}
    assert mounted <= named  # named volumes only, no bind mounts
    assert services["web"]["build"]["dockerfile"] == "docker/Dockerfile"
    assert (DOCKER / services["web"]["build"]["context"]).resolve() == Path(settings.BASE_DIR).resolve()


def test_dockerfile_is_slim_non_root_and_collects_static():
    text = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert "requirements/prod.txt" in text
    assert "collectstatic --noinput" in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "gunicorn" in text
    assert (DOCKER / "entrypoint.sh").read_text().startswith("#!/bin/sh")
    assert (DOCKER / "gunicorn.conf.py").exists()


def test_prod_requirements_carry_gunicorn_and_whitenoise():
    prod = (Path(settings.BASE_DIR) / "requirements" / "prod.txt").read_text()
    base = (Path(settings.BASE_DIR) / "requirements" / "base.txt").read_text()
    assert "-r base.txt" in prod and "gunicorn==" in prod
    assert "whitenoise==" in base


def test_image_compose_and_make_serve_run_the_same_asgi_server():
    import json

    serve_command = ["gunicorn", "--config", "docker/gunicorn.conf.py", "mk0r.asgi:application"]
    dockerfile = (DOCKER / "Dockerfile").read_text()
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    makefile = (Path(settings.BASE_DIR) / "Makefile").read_text()
    serve_recipe = re.search(r"^serve:.*\n((?:\t.*\n)+)", makefile, re.M).group(1).replace("\\\n", " ")
    assert cmd == serve_command
    assert compose["services"]["web"]["command"] == serve_command
    assert "$(BIN)/" + " ".join(serve_command) in " ".join(serve_recipe.split())
    assert "DJANGO_SETTINGS_MODULE=mk0r.settings.production" in serve_recipe
    config = (DOCKER / "gunicorn.conf.py").read_text()
    assert 'worker_class = "uvicorn_worker.UvicornWorker"' in config
    prod = (Path(settings.BASE_DIR) / "requirements" / "prod.txt").read_text()
    assert "uvicorn-worker==" in prod


def test_a_production_worker_collects_its_middle_generation_less_often():
    import gc
    import runpy

    config = runpy.run_path(str(DOCKER / "gunicorn.conf.py"))
    threshold = gc.get_threshold()
    try:
        config["post_worker_init"](worker=None)
        assert gc.get_threshold() == (threshold[0], config["MIDDLE_GENERATION_THRESHOLD"], threshold[2])
        assert config["MIDDLE_GENERATION_THRESHOLD"] > threshold[1]
    finally:
        gc.set_threshold(*threshold)
