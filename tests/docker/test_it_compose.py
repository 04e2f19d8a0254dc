"""The production compose files and images in docker/, checked without a Docker engine.

Structure (pure Python + PyYAML): the services, health checks, volumes, the GPU reservation, the start
order, that every environment variable handed to our containers is one the code actually reads, that the
Dockerfiles' COPY sources exist and survive .dockerignore, that the web image has no torch and the worker's
torch is the client's pin. Then, where a Compose v2 binary is available (``docker compose``, a
``docker-compose`` v2 on PATH, or ``$DOCKER_COMPOSE``), ``compose config`` resolves the real files: it needs
no daemon.
"""

from __future__ import annotations

import http.server
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
COMPOSE_GPUS = DOCKER / "compose.gpus.yaml"
COMPOSE_NODE = DOCKER / "compose.worker-node.yaml"
COMPOSE_EXPOSE = DOCKER / "compose.expose.yaml"
ALL_COMPOSE_FILES = (COMPOSE, COMPOSE_GPUS, COMPOSE_NODE, COMPOSE_EXPOSE)

#: Services built from our own Dockerfiles (they run our code, so their environment is ours to check).
OUR_DOCKERFILES = {"docker/Dockerfile.web", "docker/Dockerfile.worker"}

#: Variables read by a third-party image or runtime rather than by our code, with who reads them.
THIRD_PARTY_ENV = {
    "postgres": {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"},  # the postgres image's entrypoint
}
#: Image-level ENV read by Python, the shell or the NVIDIA container toolkit, not by our code.
RUNTIME_ENV = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "NVIDIA_DRIVER_CAPABILITIES",
               "PIP_DISABLE_PIP_VERSION_CHECK", "PIP_NO_CACHE_DIR", "PIP_ROOT_USER_ACTION"}


# --- loading ------------------------------------------------------------------------------------------


class Override(list):
    """A sequence tagged ``!override``: Compose replaces the inherited value instead of appending to it."""


class _ComposeLoader(yaml.SafeLoader):
    pass


_ComposeLoader.add_constructor("!override", lambda loader, node: Override(loader.construct_sequence(node, deep=True))
                               if isinstance(node, yaml.SequenceNode) else loader.construct_mapping(node, deep=True))
_ComposeLoader.add_constructor("!reset", lambda loader, node: None)


def load_compose(path: Path) -> dict[str, Any]:
    with path.open() as fh:
        data = yaml.load(fh, Loader=_ComposeLoader)  # noqa: S506 - a SafeLoader subclass
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), f"{path.name} has no services"
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose(COMPOSE)


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def gpu_devices(service: dict[str, Any]) -> list[dict[str, Any]]:
    return list(((service.get("deploy") or {}).get("resources") or {}).get("reservations", {}).get("devices") or [])


def volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """target path -> named volume (bind mounts are left out)."""
    mounts: dict[str, str] = {}
    for item in service.get("volumes") or []:
        if isinstance(item, str):
            source, _, rest = item.partition(":")
            target = rest.split(":")[0]
            if source and not source.startswith((".", "/", "~")):
                mounts[target] = source
        elif item.get("type", "volume") == "volume":
            mounts[item["target"]] = item["source"]
    return mounts


def healthcheck_command(service: dict[str, Any]) -> str:
    test = (service.get("healthcheck") or {}).get("test")
    if isinstance(test, list):
        return " ".join(str(t) for t in test[1:])
    return str(test or "")


# --- Dockerfiles --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    args: str


def dockerfile_instructions(path: Path) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped; ``stage`` counts FROMs (0-based)."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    out: list[Instruction] = []
    stage = -1
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword, args.strip()))
    return out


def arg_defaults(instructions: list[Instruction]) -> dict[str, str]:
    defaults: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ARG" and "=" in ins.args:
            name, value = ins.args.split("=", 1)
            defaults[name.strip()] = value.strip().strip('"')
    return defaults


def env_names(instructions: list[Instruction], stage: int | None = None) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ENV" and (stage is None or ins.stage == stage):
            for token in shlex.split(ins.args):
                name, _, value = token.partition("=")
                env[name] = value
    return env


def copy_sources(instructions: list[Instruction]) -> list[str]:
    sources: list[str] = []
    for ins in instructions:
        if ins.keyword not in ("COPY", "ADD"):
            continue
        tokens = shlex.split(ins.args)
        if any(t.startswith("--from=") for t in tokens):
            continue
        paths = [t for t in tokens if not t.startswith("--")]
        sources.extend(paths[:-1])
    return sources


def dockerignore_excludes(relpath: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent directories wins."""
    parts = relpath.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = os.path.normpath(raw[1:] if negate else raw)
        regex = re.compile(
            "^" + re.escape(pattern).replace(r"\*\*", ".*").replace(r"\*", "[^/]*").replace(r"\?", "[^/]") + "$"
        )
        if any(regex.match(c) for c in candidates):
            excluded = not negate
    return excluded


def tracked_files(folder: str) -> list[str]:
    """Files of ``folder`` that git tracks (what a clean checkout builds from); all files outside git."""
    try:
        out = subprocess.run(["git", "ls-files", "--", folder], cwd=ROOT, capture_output=True, text=True, check=True)
        files = out.stdout.split()
    except (OSError, subprocess.CalledProcessError):
        files = []
    if files:
        return files
    return [p.relative_to(ROOT).as_posix() for p in (ROOT / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and not any(x.endswith(".egg-info") for x in p.parts)]


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def pip_install_args(instructions: list[Instruction]) -> list[str]:
    """Every argument of every ``pip install`` in RUN instructions (flags and their values dropped)."""
    args: list[str] = []
    for ins in instructions:
        if ins.keyword != "RUN":
            continue
        lexer = shlex.shlex(ins.args, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        commands: list[list[str]] = [[]]
        for token in lexer:
            if token in ("&&", ";", "||", "|", "&"):
                commands.append([])
            else:
                commands[-1].append(token)
        for tokens in commands:
            if tokens[:2] == ["pip", "install"] or tokens[1:4] == ["-m", "pip", "install"]:
                rest = tokens[tokens.index("install") + 1:]
                skip_next = False
                for token in rest:
                    if skip_next:
                        skip_next = False
                    elif token in ("-r", "--index-url", "--extra-index-url", "-c", "-i"):
                        skip_next = True
                    elif not token.startswith("-"):
                        args.append(token)
    return args


# --- what the code reads ------------------------------------------------------------------------------


def _source_texts() -> Iterator[tuple[Path, str]]:
    for base in ("registry", "verifier", "client/src"):
        for path in (ROOT / base).rglob("*.py"):
            if "__pycache__" not in path.parts:
                yield path, path.read_text(errors="replace")
    yield ROOT / "manage.py", (ROOT / "manage.py").read_text()


def read_by_our_code(name: str) -> bool:
    """``name`` is read by our Python code (as a string literal) or by docker/entrypoint.sh."""
    literal = re.compile(r"""["']""" + re.escape(name) + r"""["']""")
    if any(literal.search(text) for _, text in _source_texts()):
        return True
    shell = (DOCKER / "entrypoint.sh").read_text()
    return re.search(r"\$\{?" + re.escape(name) + r"\b", shell) is not None


def read_by_installed_package(name: str, module: str) -> bool:
    """``name`` occurs in the source of an installed third-party package (e.g. gunicorn's WEB_CONCURRENCY)."""
    spec_origin = __import__(module).__file__
    assert spec_origin, module
    return any(name in p.read_text(errors="replace") for p in Path(spec_origin).parent.rglob("*.py"))


def compose_interpolations(path: Path) -> set[str]:
    text = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
    text = text.replace("$$", "")
    return set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text)) | set(re.findall(r"\$([A-Z_][A-Z0-9_]*)", text))


def env_file_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.add(line.split("=", 1)[0])
    return names


# --- the services -------------------------------------------------------------------------------------

REQUIRED_SERVICES = {"postgres", "redis", "migrate", "proxy", "web", "worker-gpu", "worker-cpu", "beat"}
LONG_RUNNING = {"postgres", "redis", "proxy", "web", "worker-gpu", "worker-cpu"}  # beat and migrate have no probe


def test_services_exist(services):
    missing = REQUIRED_SERVICES - set(services)
    assert not missing, f"compose.yaml lacks the services {sorted(missing)}"


@pytest.mark.parametrize("name,probe", [
    ("postgres", "pg_isready"),
    ("redis", "redis-cli"),
    ("web", "/app/docker/healthcheck.py"),
    ("worker-gpu", "celery -A verifier inspect ping -d celery@$$HOSTNAME"),
    ("worker-cpu", "celery -A verifier inspect ping -d celery@$$HOSTNAME"),
])
def test_long_running_services_have_health_checks(services, name, probe):
    check = services[name].get("healthcheck")
    assert check and check.get("test"), f"{name} has no healthcheck"
    assert probe in healthcheck_command(services[name]), f"{name}'s healthcheck does not run {probe!r}"
    assert check["test"][0] in ("CMD", "CMD-SHELL"), f"{name}'s healthcheck test must be CMD or CMD-SHELL"


def test_every_service_restarts_except_the_one_shot_migration(services):
    assert services["migrate"].get("restart", "no") == "no"
    for name in REQUIRED_SERVICES - {"migrate"}:
        assert services[name].get("restart") in ("unless-stopped", "always"), f"{name} does not restart"


def test_volumes_for_database_broker_and_tickets_are_declared_and_mounted(compose, services):
    declared = set(compose.get("volumes") or {})
    assert {"postgres-data", "redis-data", "tickets"} <= declared, f"declared volumes: {sorted(declared)}"
    assert volume_mounts(services["postgres"]).get("/var/lib/postgresql/data") == "postgres-data"
    assert volume_mounts(services["redis"]).get("/data") == "redis-data"
    for name in ("web", "worker-gpu", "worker-cpu", *(s for s in services if s.startswith("worker"))):
        mounts = volume_mounts(services[name])
        assert set(mounts.values()) <= declared, f"{name} mounts an undeclared volume: {mounts}"


@pytest.mark.parametrize("name,dockerfile", [
    ("web", "Dockerfile.web"), ("worker-gpu", "Dockerfile.worker"), ("worker-cpu", "Dockerfile.worker"),
])
def test_ticket_storage_volume_is_mounted_where_the_image_keeps_media(services, name, dockerfile):
    media_root = env_names(dockerfile_instructions(DOCKER / dockerfile))["TICKETHUB_MEDIA_ROOT"]
    assert volume_mounts(services[name]).get(media_root) == "tickets", (
        f"{name} must mount the tickets volume at its TICKETHUB_MEDIA_ROOT {media_root}"
    )


def test_gpu_worker_reserves_exactly_one_nvidia_gpu_by_id(services):
    devices = gpu_devices(services["worker-gpu"])
    assert len(devices) == 1, f"worker-gpu must reserve one device entry, got {devices}"
    device = devices[0]
    assert device.get("driver") == "nvidia"
    assert "gpu" in device.get("capabilities", [])
    # count: 1 would hand GPU 0 to every worker; one id per worker process.
    assert "count" not in device and len(device.get("device_ids", [])) == 1, device
    assert gpu_devices(services["worker-cpu"]) == [], "the CPU worker must not reserve a GPU"


def test_workers_are_behind_profiles_so_a_machine_without_gpu_can_start_the_hub(services):
    assert services["worker-gpu"].get("profiles") == ["gpu"]
    assert services["worker-cpu"].get("profiles") == ["cpu"]
    for name in REQUIRED_SERVICES - {"worker-gpu", "worker-cpu"}:
        assert not services[name].get("profiles"), f"{name} must always start"


def test_extra_gpu_workers_each_replace_the_inherited_device_with_their_own():
    extra = load_compose(COMPOSE_GPUS)["services"]
    assert extra, "compose.gpus.yaml defines no workers"
    ids = []
    for name, service in extra.items():
        assert service.get("extends", {}).get("service") == "worker-gpu", f"{name} must extend worker-gpu"
        devices = ((service["deploy"]["resources"]["reservations"]).get("devices"))
        # extends appends sequences: without !override each worker would also reserve worker-gpu's GPU.
        assert isinstance(devices, Override), f"{name}'s devices must be tagged !override"
        assert len(devices) == 1 and len(devices[0]["device_ids"]) == 1 and "gpu" in devices[0]["capabilities"]
        ids.append(devices[0]["device_ids"][0])
    assert len(set(ids)) == len(ids) and "0" not in ids, f"GPU ids must be distinct and not worker-gpu's: {ids}"


def test_worker_node_file_runs_gpu_workers_against_shared_storage():
    node = load_compose(COMPOSE_NODE)["services"]
    assert node and all(name.startswith("worker-gpu") for name in node)
    for name, service in node.items():
        env = environment_of(service)
        assert env["TICKETHUB_STORAGE"] == "s3", f"{name}: workers on other machines need shared storage"
        assert len(gpu_devices(service)) == 1 and len(gpu_devices(service)[0]["device_ids"]) == 1
        assert "HOSTNAME" in healthcheck_command(service) and service.get("hostname")
        assert "depends_on" not in service, f"{name}: the hub's services are not in this project"


def test_expose_file_publishes_only_the_database_and_broker_on_the_private_address(services):
    exposed = load_compose(COMPOSE_EXPOSE)["services"]
    assert set(exposed) == {"postgres", "redis"}
    for name, service in exposed.items():
        assert set(service) == {"ports"}, f"{name}: compose.expose.yaml should only publish ports"
        for port in service["ports"]:
            assert port.startswith("${TICKETHUB_PRIVATE_ADDRESS:?"), f"{name} is published beyond the private address"
    for name, service in services.items():
        if name != "proxy":
            assert not service.get("ports"), f"compose.yaml publishes {name}; only the proxy is public"


def test_start_order_waits_for_healthy_dependencies(services):
    for name, service in services.items():
        for dep, condition in depends_on(service).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if services[dep].get("healthcheck"):
                assert condition == "service_healthy", f"{name} must wait for {dep} to be healthy, not {condition}"
    for name in ("web", "worker-gpu", "worker-cpu", "migrate"):
        assert depends_on(services[name]).get("postgres") == "service_healthy", name
    for name in ("web", "worker-gpu", "worker-cpu", "beat"):
        assert depends_on(services[name]).get("redis") == "service_healthy", name
        assert depends_on(services[name]).get("migrate") == "service_completed_successfully", name


def test_service_commands_are_entrypoint_modes(services):
    entrypoint = (DOCKER / "entrypoint.sh").read_text()
    modes = set(re.findall(r"^\s+([a-z]+)\)$", entrypoint, re.M))
    for name, mode in [("web", "web"), ("migrate", "migrate"), ("beat", "beat"),
                       ("worker-gpu", "worker"), ("worker-cpu", "worker")]:
        assert services[name]["command"] == [mode], f"{name} should run the entrypoint's {mode!r} mode"
        assert mode in modes, f"docker/entrypoint.sh has no {mode!r} mode"
    assert "celery -A verifier worker -Q" in entrypoint and "--concurrency 1" in entrypoint
    assert "celery -A verifier worker --beat" in entrypoint  # the beat embedded in the sweeper's solo worker
    sync = re.search(r"manage\.py (\w+)$", entrypoint, re.M)
    assert sync and (ROOT / "registry/tickets/management/commands" / f"{sync.group(1)}.py").is_file()
    subprocess.run(["sh", "-n", str(DOCKER / "entrypoint.sh")], check=True)
    assert os.access(DOCKER / "entrypoint.sh", os.X_OK), "docker/entrypoint.sh must be executable"


# --- configuration through the environment -------------------------------------------------------------


def _our_services() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path in ALL_COMPOSE_FILES:
        for name, service in load_compose(path)["services"].items():
            build = service.get("build") or {}
            dockerfile = build.get("dockerfile") if isinstance(build, dict) else None
            if dockerfile in OUR_DOCKERFILES or "extends" in service:
                yield path.name, name, service


def test_every_variable_compose_passes_to_our_containers_is_read_by_our_code():
    unread = []
    for filename, name, service in _our_services():
        for var in environment_of(service):
            if var == "WEB_CONCURRENCY" and read_by_installed_package(var, "gunicorn"):
                continue  # gunicorn's own default for --workers
            if not read_by_our_code(var):
                unread.append(f"{filename}:{name}:{var}")
    assert not unread, f"variables that nothing in registry/, verifier/, client/ or the entrypoint reads: {unread}"


def test_third_party_services_get_only_variables_their_images_read(services):
    for name in ("postgres", "redis"):
        extra = set(environment_of(services[name])) - THIRD_PARTY_ENV.get(name, set())
        assert not extra, f"{name} is given variables its image does not read: {sorted(extra)}"


@pytest.mark.parametrize("dockerfile", ["Dockerfile.web", "Dockerfile.worker"])
def test_image_environment_is_read_by_our_code_or_the_runtime(dockerfile):
    instructions = dockerfile_instructions(DOCKER / dockerfile)
    final = max(i.stage for i in instructions)
    unread = [n for n in env_names(instructions, final) if n not in RUNTIME_ENV and not read_by_our_code(n)]
    assert not unread, f"{dockerfile} sets variables nothing reads: {unread}"


@pytest.mark.parametrize("compose_file,env_file", [
    (COMPOSE, DOCKER / ".env.example"), (COMPOSE_NODE, DOCKER / "worker-node.env.example"),
])
def test_env_example_documents_exactly_the_compose_variables(compose_file, env_file):
    used = compose_interpolations(compose_file)
    if compose_file == COMPOSE:
        used |= compose_interpolations(COMPOSE_GPUS) | compose_interpolations(COMPOSE_EXPOSE)
    documented = env_file_names(env_file)
    assert used - documented == set(), f"{env_file.name} lacks {sorted(used - documented)}"
    unused = {n for n in documented - used if not n.startswith("COMPOSE_")}
    assert not unused, f"{env_file.name} lists variables {compose_file.name} never uses: {sorted(unused)}"


def test_secrets_are_required_not_defaulted():
    text = COMPOSE.read_text()
    for secret in ("DJANGO_SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD"):
        assert re.search(r"\$\{" + secret + r":\?", text), f"{secret} must be required (${{{secret}:?...}})"
        assert not re.search(r"\$\{" + secret + r":-", text), f"{secret} must have no default"
    example = (DOCKER / ".env.example").read_text()
    for secret in ("DJANGO_SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD"):
        assert re.search(rf"^{secret}=$", example, re.M), f".env.example must leave {secret} empty"


# --- images -------------------------------------------------------------------------------------------


def test_every_referenced_dockerfile_exists_and_builds_from_the_repository_root():
    for path in ALL_COMPOSE_FILES:
        for name, service in load_compose(path)["services"].items():
            build = service.get("build")
            if not build:
                continue
            context = (path.parent / build["context"]).resolve()
            assert context == ROOT, f"{path.name}:{name} must build from the repository root, not {context}"
            assert (context / build["dockerfile"]).is_file(), f"{path.name}:{name}: no {build['dockerfile']}"


@pytest.mark.parametrize("dockerfile", ["Dockerfile.web", "Dockerfile.worker"])
def test_copy_sources_exist_and_are_not_dockerignored(dockerfile):
    patterns = dockerignore_patterns()
    sources = copy_sources(dockerfile_instructions(DOCKER / dockerfile))
    assert sources, f"{dockerfile} copies nothing"
    for source in sources:
        assert (ROOT / source).exists(), f"{dockerfile} copies {source}, which is not in the repository"
        assert not dockerignore_excludes(source, patterns), f"{dockerfile} copies {source}, which .dockerignore drops"
        if (ROOT / source).is_dir():  # the tracked files inside must survive too (e.g. client/pyproject.toml)
            for rel in tracked_files(source):
                assert not dockerignore_excludes(rel, patterns), f".dockerignore drops {rel}"


def test_dockerignore_keeps_local_state_and_secrets_out():
    patterns = dockerignore_patterns()
    for path in (".git/HEAD", ".venv/bin/python", "var/hub.sqlite3", "docker/.env", "docker/worker-node.env",
                 "tests/conftest.py", "registry/__pycache__/x.pyc", "client/src/ticketclient.egg-info/PKG-INFO",
                 "client/build/lib/ticketclient/stale.py"):
        assert dockerignore_excludes(path, patterns), f".dockerignore lets {path} into the build context"


@pytest.mark.parametrize("dockerfile", ["Dockerfile.web", "Dockerfile.worker"])
def test_images_are_multi_stage_pinned_and_run_as_a_non_root_user(dockerfile):
    instructions = dockerfile_instructions(DOCKER / dockerfile)
    args = arg_defaults(instructions)
    froms = [i.args.split()[0] for i in instructions if i.keyword == "FROM"]
    assert len(froms) >= 2, f"{dockerfile} must be multi-stage"
    for image in froms:
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert re.search(r":\d+\.\d+\.\d+", resolved), f"{dockerfile}: base image {resolved} is not pinned"
    assert any(i.keyword == "COPY" and "--from=builder" in i.args for i in instructions)
    final = max(i.stage for i in instructions)
    users = [i.args for i in instructions if i.keyword == "USER" and i.stage == final]
    assert users and users[-1] not in ("root", "0"), f"{dockerfile} must end as a non-root USER"


def test_third_party_images_are_pinned(services):
    for name in ("postgres", "redis"):
        assert re.search(r":\d+\.\d+(\.\d+)?-", services[name]["image"]), f"{name}'s image is not pinned"


def _torch_pin() -> str:
    client = tomllib.loads((ROOT / "client/pyproject.toml").read_text())["project"]
    pins = [r for r in client["optional-dependencies"]["torch"] if re.match(r"torch\s*==", r)]
    assert len(pins) == 1, f"client[torch] must pin torch exactly once: {pins}"
    return pins[0].split("==")[1].strip()


def test_web_image_installs_no_torch():
    installs = pip_install_args(dockerfile_instructions(DOCKER / "Dockerfile.web"))
    assert "./client" in installs, f"the web image must install ./client (torch-free): {installs}"
    assert not [a for a in installs if "torch" in a], f"the web image installs torch: {installs}"
    hub = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    client = tomllib.loads((ROOT / "client/pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in hub + client if re.match(r"torch\b", d)], "a base dependency pulls torch into the web image"


def test_worker_image_installs_the_client_torch_pin_from_a_cuda_index(services):
    instructions = dockerfile_instructions(DOCKER / "Dockerfile.worker")
    pin = _torch_pin()
    assert pin == "2.13.0"
    assert arg_defaults(instructions)["TORCH_VERSION"] == pin
    assert "/whl/cu" in arg_defaults(instructions)["TORCH_INDEX_URL"], "the default worker build must be CUDA"
    installs = pip_install_args(instructions)
    assert "torch==${TORCH_VERSION}" in installs and "./client[torch]" in installs, installs
    for name, service in [("worker-gpu", services["worker-gpu"]), ("worker-cpu", services["worker-cpu"])]:
        assert service["build"]["args"]["TORCH_VERSION"] == pin, f"{name} builds another torch"
    assert "/whl/cpu" in services["worker-cpu"]["build"]["args"]["TORCH_INDEX_URL"]
    assert services["worker-gpu"]["build"]["args"]["EXPECT_CUDA"] == "1"
    for service in load_compose(COMPOSE_NODE)["services"].values():
        assert service["build"]["args"]["TORCH_VERSION"] == pin


def _run_worker_torch_guard(torch_version: str, expect_cuda: str) -> subprocess.CompletedProcess:
    """The worker Dockerfile's build-time torch check, run here against this environment's torch."""
    guard = [i.args for i in dockerfile_instructions(DOCKER / "Dockerfile.worker")
             if i.keyword == "RUN" and "python -c" in i.args and "import sys, torch" in i.args]
    assert len(guard) == 1, "Dockerfile.worker should check the installed torch once"
    command = "python -c" + guard[0].split("python -c", 1)[1]
    env = dict(os.environ, TORCH_VERSION=torch_version, EXPECT_CUDA=expect_cuda,
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True, timeout=120)


def test_worker_build_fails_on_the_wrong_torch():
    torch = pytest.importorskip("torch")
    installed = torch.__version__.split("+")[0]
    ok = _run_worker_torch_guard(installed, "0")
    assert ok.returncode == 0, ok.stderr
    wrong = _run_worker_torch_guard("1.0.0", "0")
    assert wrong.returncode != 0 and "expected 1.0.0" in wrong.stderr
    if torch.version.cuda is None:
        cpu_in_gpu_image = _run_worker_torch_guard(installed, "1")
        assert cpu_in_gpu_image.returncode != 0 and "CPU-only torch" in cpu_in_gpu_image.stderr


def test_hub_requirements_are_the_project_dependencies():
    out = subprocess.run([sys.executable, str(DOCKER / "hub_requirements.py"), str(ROOT / "pyproject.toml")],
                         check=True, capture_output=True, text=True).stdout.split()
    assert out == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(line.startswith(("Django", "django")) for line in out)


# --- the web health check -----------------------------------------------------------------------------


def test_web_health_check_url_is_a_route_of_the_registry(services):
    from django.urls import Resolver404, resolve

    url = services["web"]["healthcheck"]["test"][-1]
    path = re.sub(r"^https?://[^/]+", "", url)
    try:
        resolve(path)
    except Resolver404:
        pytest.fail(f"the web health check asks for {path}, which registry/urls.py does not route")
    dockerfile_hc = [i.args for i in dockerfile_instructions(DOCKER / "Dockerfile.web") if i.keyword == "HEALTHCHECK"]
    assert dockerfile_hc and url in dockerfile_hc[0], "Dockerfile.web's HEALTHCHECK and compose's should agree"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200 if self.path == "/ok" else 404)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_healthcheck_script_passes_on_200_and_fails_otherwise(http_server):
    script = str(DOCKER / "healthcheck.py")
    assert subprocess.run([sys.executable, script, f"{http_server}/ok"], capture_output=True).returncode == 0
    missing = subprocess.run([sys.executable, script, f"{http_server}/missing"], capture_output=True, text=True)
    assert missing.returncode == 1 and "404" in missing.stderr
    down = subprocess.run([sys.executable, script, "http://127.0.0.1:9/"], capture_output=True, text=True)
    assert down.returncode == 1 and "unreachable" in down.stderr


# --- docker compose config (no daemon needed) ---------------------------------------------------------


def compose_command() -> list[str] | None:
    """A Compose v2 command line: ``$DOCKER_COMPOSE``, ``docker compose`` or ``docker-compose`` v2."""
    candidates: list[list[str]] = []
    if os.environ.get("DOCKER_COMPOSE"):
        candidates.append(shlex.split(os.environ["DOCKER_COMPOSE"]))
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for cmd in candidates:
        try:
            out = subprocess.run([*cmd, "version"], capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        version = re.search(r"version v?(\d+)\.", out.stdout, re.I)
        if out.returncode == 0 and version and int(version.group(1)) >= 2:  # v1 (python) lacks the spec
            return cmd
    return None


def _filled_env_file(example: Path, tmp_path: Path, values: dict[str, str]) -> Path:
    lines = []
    for line in example.read_text().splitlines():
        name = line.split("=", 1)[0] if "=" in line and not line.startswith("#") else None
        lines.append(f"{name}={values[name]}" if name in values else line)
    out = tmp_path / example.name.replace(".example", "")
    out.write_text("\n".join(lines) + "\n")
    return out


SECRETS = {"DJANGO_SECRET_KEY": "k" * 50, "POSTGRES_PASSWORD": "pgsecret", "REDIS_PASSWORD": "redissecret"}
NODE = {"TICKETHUB_NODE_NAME": "box1", "DATABASE_URL": "postgres://hub:pw@db.example.org:5432/tickethub",
        "CELERY_BROKER_URL": "rediss://:pw@broker.example.org:6380/0", "AWS_STORAGE_BUCKET_NAME": "tickets"}


def _compose_config(cmd: list[str], files: list[Path], env_file: Path, *profiles: str) -> subprocess.CompletedProcess:
    args = [*cmd, "--project-directory", str(DOCKER), "--env-file", str(env_file)]
    for f in files:
        args += ["-f", str(f)]
    for p in profiles:
        args += ["--profile", p]
    env = {k: v for k, v in os.environ.items() if not (k in SECRETS or k in NODE or k.startswith("COMPOSE_"))}
    return subprocess.run([*args, "config"], capture_output=True, text=True, timeout=60, env=env)


def test_docker_compose_config_resolves_the_real_files(tmp_path):
    cmd = compose_command()
    if cmd is None:
        pytest.skip("no Compose v2 (docker compose plugin, docker-compose v2 or $DOCKER_COMPOSE) on this machine")
    env_file = _filled_env_file(DOCKER / ".env.example", tmp_path, {**SECRETS, "TICKETHUB_PRIVATE_ADDRESS": "10.8.0.1"})
    result = _compose_config(cmd, [COMPOSE, COMPOSE_GPUS, COMPOSE_EXPOSE], env_file, "gpu", "cpu")
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)["services"]
    assert REQUIRED_SERVICES <= set(resolved)
    gpu_ids = []
    for name, service in resolved.items():
        devices = gpu_devices(service)
        if name.startswith("worker-gpu"):
            assert len(devices) == 1 and len(devices[0]["device_ids"]) == 1, f"{name}: {devices}"
            gpu_ids.append(devices[0]["device_ids"][0])
        else:
            assert devices == [], name
    assert len(set(gpu_ids)) == len(gpu_ids) >= 2, f"GPU workers share a device: {gpu_ids}"
    assert [(p["host_ip"], p["published"]) for p in resolved["redis"]["ports"]] == [("10.8.0.1", "6379")]
    web_env = resolved["web"]["environment"]
    assert web_env["DATABASE_URL"] == "postgres://tickethub:pgsecret@postgres:5432/tickethub"
    assert web_env["CELERY_BROKER_URL"] == "redis://:redissecret@redis:6379/0"

    # Without the secrets, compose refuses to resolve the project at all.
    (tmp_path / "bare").mkdir()
    refused = _compose_config(cmd, [COMPOSE], _filled_env_file(DOCKER / ".env.example", tmp_path / "bare", {}))
    assert refused.returncode != 0 and "required variable" in refused.stderr, refused.stderr

    node_env = _filled_env_file(DOCKER / "worker-node.env.example", tmp_path, NODE)
    node = _compose_config(cmd, [COMPOSE_NODE], node_env)
    assert node.returncode == 0, node.stderr
    node_services = yaml.safe_load(node.stdout)["services"]
    assert node_services["worker-gpu-0"]["hostname"] == "box1-gpu0"
    assert node_services["worker-gpu-0"]["environment"]["TICKETHUB_STORAGE"] == "s3"


# --- the front door -----------------------------------------------------------------------------------


def test_only_the_buffering_proxy_is_published_and_it_forwards_to_web(services):
    proxy = services["proxy"]
    assert proxy["build"]["dockerfile"] == "docker/Dockerfile.proxy"
    assert [p.split(":")[-1] for p in proxy["ports"]] == ["8080"]
    assert proxy["depends_on"]["web"]["condition"] == "service_healthy"
    assert not services["web"].get("ports") and services["web"]["expose"] == ["8000"]
    conf = (DOCKER / "nginx.conf").read_text()
    assert "server web:8000;" in conf and "listen 8080;" in conf
    for directive in ("client_header_timeout", "client_body_timeout", "send_timeout", "client_max_body_size",
                      "proxy_request_buffering on", "proxy_buffering on", "large_client_header_buffers"):
        assert directive in conf, f"docker/nginx.conf lacks {directive}"
    copies = [i.args for i in dockerfile_instructions(DOCKER / "Dockerfile.proxy") if i.keyword == "COPY"]
    assert copies == ["docker/nginx.conf /etc/nginx/nginx.conf"]
    assert "apt-get install" in (DOCKER / "Dockerfile.proxy").read_text(), "nginx comes from Debian's packages"


def test_the_sweeper_has_its_own_queue_and_never_imports_torch(compose, services):
    assert compose["x-hub-environment"]["VERIFIER_SWEEP_QUEUE"] == "verify-sweep"
    assert services["beat"]["environment"]["VERIFIER_WORKER_ROLE"] == "sweeper"
    entry = (DOCKER / "entrypoint.sh").read_text()
    beat = entry.split("beat)", 1)[1].split(";;", 1)[0]
    assert "worker --beat" in beat and "-P solo" in beat and "VERIFIER_SWEEP_QUEUE" in beat
