"""docker/: no Docker engine here, so the files are linted: the Dockerfile's instructions, the
compose YAML, the image's configuration, and its healthcheck and init script run for real."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pgshim.cli import build_parser
from pgshim.config import Config

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined: list[str] = []
    pending = ""
    for raw in (DOCKER / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or (line.startswith("#") and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    assert not pending, "a continuation line ends the Dockerfile"
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined]


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def test_dockerfile_base_user_and_entrypoint() -> None:
    steps = instructions()
    names = [name for name, _ in steps]
    assert steps[0] == ("FROM", "python:3.11-slim")
    assert set(names) <= {"FROM", "ENV", "WORKDIR", "COPY", "RUN", "USER", "VOLUME", "EXPOSE",
                          "HEALTHCHECK", "ENTRYPOINT", "CMD"}  # fmt: skip
    user = dict(steps)["USER"]
    assert user not in ("root", "0")
    assert user in dict(steps)["RUN"]  # the user is created in the image
    assert names.index("USER") < names.index("ENTRYPOINT")
    assert exec_form(dict(steps)["ENTRYPOINT"]) == ["pgshim"]
    args = build_parser().parse_args(exec_form(dict(steps)["CMD"]))
    assert args.command == "serve"
    copied_config = next(a for n, a in steps if n == "COPY" and a.endswith(args.config))
    assert (ROOT / copied_config.split()[0]).is_file()


def test_dockerfile_copies_only_what_exists() -> None:
    for name, arguments in instructions():
        if name == "COPY":
            *sources, _target = shlex.split(arguments)
            for source in sources:
                assert (ROOT / source).exists(), source


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for name, arguments in instructions():
        if name == "ENV":
            for pair in shlex.split(arguments):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def test_image_configuration_is_valid_and_listens_where_it_exposes() -> None:
    env = image_env()
    config = Config.load(DOCKER / "pgshim.toml", env=env)
    assert config.host == "0.0.0.0"
    exposed = {int(p) for n, a in instructions() if n == "EXPOSE" for p in a.split()}
    assert {config.port, config.metrics_port} == exposed
    assert all(user.method != "trust" for user in config.users.values())
    assert config.default_publication == "pgshim"


def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_compose_services_volumes_and_health_order() -> None:
    spec = compose()
    services = spec["services"]
    assert set(services) == {"reddb", "pgshim", "subscriber"}
    assert set(spec["volumes"]) == {"reddb-data", "pgshim-state", "subscriber-data"}
    pgshim = services["pgshim"]
    build = DOCKER / pgshim["build"]["context"]
    assert (build / pgshim["build"]["dockerfile"]).resolve() == DOCKER / "Dockerfile"
    mounts = dict(m.split(":", 1) for m in pgshim["volumes"])
    assert mounts["reddb-data"].endswith(":ro")  # pgshim never writes RedDB's files
    spool = Config.load(DOCKER / "pgshim.toml", env={}).spool
    assert spool is not None and spool.startswith(mounts["reddb-data"].removesuffix(":ro") + "/")
    reddb_mount = services["reddb"]["volumes"][0].split(":")
    assert reddb_mount[0] == "reddb-data"
    assert Path(spool).name in " ".join(services["reddb"]["command"])
    assert services["subscriber"]["image"] == "postgres:15"
    assert services["subscriber"]["depends_on"]["pgshim"]["condition"] == "service_healthy"
    for service in services.values():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (DOCKER / source).exists(), source


def healthcheck_command() -> list[str]:
    arguments = dict(instructions())["HEALTHCHECK"]
    return exec_form(arguments.split(" CMD ", 1)[1])


def test_healthcheck_passes_against_a_server_and_fails_without(spool, pgshim) -> None:
    command = healthcheck_command()
    assert command[0] == "python"
    server = pgshim(spool.path)
    env = dict(os.environ, PGSHIM_PORT=str(server.port))
    run = [sys.executable, *command[1:]]
    assert subprocess.run(run, env=env, timeout=30).returncode == 0
    server.stop()
    failed = subprocess.run(run, env=env, capture_output=True, timeout=30)
    assert failed.returncode != 0


def test_subscriber_init_script_subscribes_through_pgshim(tmp_path, spool, pgshim, pg_cluster):
    config = tmp_path / "pgshim.toml"
    config.write_text('default_publication = "pgshim"\n')
    server = pgshim(spool.path, "--config", str(config))
    pg_cluster.psql("CREATE DATABASE docker_sub")
    env = dict(
        os.environ, PGHOST="127.0.0.1", PGPORT=str(pg_cluster.port), POSTGRES_USER=pg_cluster.superuser,
        POSTGRES_DB="docker_sub", SUBSCRIBER_SQL=str(ROOT / "examples" / "subscriber.sql"),
        PGSHIM_CONNINFO=f"host=127.0.0.1 port={server.port} user=postgres dbname=reddb",
    )  # fmt: skip
    try:
        done = subprocess.run(
            ["bash", str(DOCKER / "subscriber-init.sh")], env=env, capture_output=True,
            text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "CREATE SUBSCRIPTION" in done.stdout
        assert pg_cluster.psql("SELECT subname FROM pg_subscription") == "reddb_sub"
    finally:
        pg_cluster.psql("DROP SUBSCRIPTION IF EXISTS reddb_sub", dbname="docker_sub")
        pg_cluster.psql("DROP DATABASE docker_sub")
