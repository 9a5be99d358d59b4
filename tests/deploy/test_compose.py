"""docker-compose.yaml is right by construction: it passes scripts/compose_check.py, the check catches each
kind of mistake in a mutated copy, and .env.example lists exactly the variables the code and compose read."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from compose_check import INTERPOLATION, check, compose_variables, env_example_names
from pydantic import AliasChoices

from churnguard.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
CODE_DIRS = ("include", "plugins", "dags", "scripts")
# the interpreter's own search path, which airflow_stack.py passes through to its children: nobody sets it
# for churnguard
NOT_SETTINGS = {"PYTHONPATH"}


# --- the check on the real file and on mutated copies ---------------------------------------------------------


def mutated(tmp_path: Path, old: str, new: str, env_extra: str = "") -> tuple[Path, str]:
    """A copy of docker-compose.yaml (and .env.example) in tmp_path with ``old`` replaced by ``new`` once."""
    text = COMPOSE.read_text()
    assert text.count(old) == 1, f"the mutation's anchor {old!r} must occur once in docker-compose.yaml"
    text = text.replace(old, new)
    (tmp_path / "docker-compose.yaml").write_text(text)
    (tmp_path / ".env.example").write_text(ENV_EXAMPLE.read_text() + env_extra)
    return tmp_path / "docker-compose.yaml", text


def line_of(text: str, snippet: str) -> int:
    """1-based line of the first ``snippet``."""
    return text[: text.index(snippet)].count("\n") + 1


def service_line(text: str, service: str) -> int:
    """1-based line of the service's key under ``services:``."""
    return line_of(text, f"\n  {service}:\n") + 1


def lines(compose_file: Path) -> list[str]:
    return [p.line_text() for p in check(compose_file, compose_file.parent / ".env.example")]


@pytest.mark.integration
def test_the_compose_file_passes_the_check():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compose_check.py")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "docker-compose.yaml: ok (.env.example checked)"


@pytest.mark.integration
def test_the_check_exits_1_and_prints_one_line_per_problem(tmp_path):
    compose, _ = mutated(tmp_path, '      - "5555:5555"', '      - "8080:5555"')
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compose_check.py"), str(compose)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout.splitlines() == lines(compose)
    assert len(result.stdout.splitlines()) == 1


@pytest.mark.integration
@pytest.mark.parametrize(
    ("old", "new", "service", "problem"),
    [
        (
            "      mlflow:\n        condition: service_healthy",
            "      mlfow:\n        condition: service_healthy",
            "airflow-worker",
            "depends_on: 'mlfow' is not a service",
        ),
        (
            "- seaweedfs-data:/data",
            "- seaweed-data:/data",
            "s3",
            "volumes: named volume 'seaweed-data' is not declared under top-level volumes:",
        ),
        (
            '      - "5555:5555"',
            '      - "8080:5555"',
            "flower",
            "ports: host port 8080:5555 is already published by service airflow-apiserver",
        ),
    ],
    ids=["missing depends_on target", "undeclared named volume", "duplicate host port"],
)
def test_a_broken_reference_is_reported_on_its_service_line(tmp_path, old, new, service, problem):
    compose, text = mutated(tmp_path, old, new)
    assert lines(compose) == [f"docker-compose.yaml:{service_line(text, service)}: service {service}: {problem}"]


@pytest.mark.integration
def test_a_variable_neither_defaulted_nor_listed_is_reported(tmp_path):
    compose, text = mutated(tmp_path, "MLFLOW_S3_ENDPOINT_URL: http://s3:8333", "MLFLOW_S3_ENDPOINT_URL: ${S3_URL}")
    line = line_of(text, "${S3_URL}")
    assert lines(compose) == [
        f"docker-compose.yaml:{line}: service mlflow: interpolation: "
        "${S3_URL} has no default and is not listed in .env.example"
    ]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("written", "env_extra"),
    [
        ("${S3_URL:-http://s3:8333}", ""),  # a default
        ("${S3_URL}", "# S3 endpoint.\nS3_URL=\n"),  # listed in .env.example
        ("$${S3_URL}", ""),  # $$ is a literal dollar, not interpolated
    ],
)
def test_a_defaulted_listed_or_escaped_variable_passes(tmp_path, written, env_extra):
    compose, _ = mutated(
        tmp_path, "MLFLOW_S3_ENDPOINT_URL: http://s3:8333", f"MLFLOW_S3_ENDPOINT_URL: {written}", env_extra
    )
    assert lines(compose) == []


@pytest.mark.integration
def test_a_schema_violation_is_reported(tmp_path):
    compose, text = mutated(tmp_path, "    expose:\n      - 6379", "    expoze:\n      - 6379")
    line = service_line(text, "redis")
    [reported] = lines(compose)
    assert reported.startswith(f"docker-compose.yaml:{line}: service redis: schema: ")
    assert "'expoze' was unexpected" in reported


@pytest.mark.integration
def test_a_service_without_healthcheck_is_reported(tmp_path):
    compose, text = mutated(
        tmp_path,
        '    command: scheduler\n    healthcheck:\n      test: ["CMD", "curl", "--fail", '
        '"http://localhost:8974/health"]',
        "    command: scheduler\n    healthcheck:\n      disable: true",
    )
    line = service_line(text, "airflow-scheduler")
    assert lines(compose) == [
        f"docker-compose.yaml:{line}: service airflow-scheduler: healthcheck: no healthcheck, "
        "and no service waits for it with condition: service_completed_successfully"
    ]


@pytest.mark.integration
def test_a_one_shot_nobody_waits_for_to_complete_is_reported(tmp_path):
    text = COMPOSE.read_text()
    waits = "      s3-init:\n        condition: service_completed_successfully"
    assert text.count(waits) == 2  # mlflow and the worker wait for the bucket
    (tmp_path / "docker-compose.yaml").write_text(
        text.replace(waits, "      s3-init:\n        condition: service_started")
    )
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env.example")
    line = service_line(text, "s3-init")
    assert lines(tmp_path / "docker-compose.yaml") == [
        f"docker-compose.yaml:{line}: service s3-init: healthcheck: no healthcheck, and no service waits for it "
        "with condition: service_completed_successfully"
    ]


def interpolate(text: str, values: dict[str, str]) -> str:
    """What compose makes of ``text`` given ``values`` (a default applies when the value is missing)."""

    def substitute(match: re.Match) -> str:
        name = match.group("braced") or match.group("bare")
        default = match.group("arg") if (match.group("op") or "").lstrip(":") == "-" else ""
        return values.get(name, default)

    return INTERPOLATION.sub(substitute, text)


def test_the_airflow_connections_are_json_once_interpolated():
    environment = yaml.safe_load(COMPOSE.read_text())["x-airflow-common"]["environment"]
    values = {"AWS_ACCESS_KEY_ID": "a1b2", "AWS_SECRET_ACCESS_KEY": "c3d4", "STORE_DB_PASSWORD": "e5f6"}
    s3 = json.loads(interpolate(environment["AIRFLOW_CONN_CHURNGUARD_S3"], values))
    store = json.loads(interpolate(environment["AIRFLOW_CONN_CHURNGUARD_STORE"], values))
    assert s3 == {
        "conn_type": "aws",
        "login": "a1b2",
        "password": "c3d4",
        "extra": {"endpoint_url": "http://s3:8333", "region_name": "us-east-1"},
    }
    assert store == {
        "conn_type": "postgres",
        "host": "postgres",
        "port": 5432,
        "schema": "churnguard",
        "login": "churnguard",
        "password": "e5f6",
    }
    # the library's fallback variables point at the same store and endpoint
    assert interpolate(environment["CHURNGUARD_DB_URL"], values) == (
        "postgresql+psycopg2://churnguard:e5f6@postgres:5432/churnguard"
    )
    assert environment["CHURNGUARD_S3_ENDPOINT_URL"] == s3["extra"]["endpoint_url"]


# --- .env.example, both ways ------------------------------------------------------------------------------------


def _is_environ(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def python_env_reads(source: str) -> set[str]:
    """Variables read through ``os.environ``/``os.getenv`` by name (a literal or a module-level constant)."""
    tree = ast.parse(source)
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }

    def name(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return constants.get(node.id) if isinstance(node, ast.Name) else None

    reads = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            environ_method = (
                isinstance(func, ast.Attribute)
                and _is_environ(func.value)
                and func.attr in ("get", "setdefault", "pop")
            )
            getenv = (
                isinstance(func, ast.Attribute)
                and func.attr == "getenv"
                and isinstance(func.value, ast.Name)
                and func.value.id == "os"
            )
            if environ_method or getenv:
                reads.append(name(node.args[0]))
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_environ(node.value):
            reads.append(name(node.slice))
        elif (
            isinstance(node, ast.Compare)
            and isinstance(node.ops[0], ast.In | ast.NotIn)
            and _is_environ(node.comparators[0])
        ):
            reads.append(name(node.left))
    return {r for r in reads if r}


def shell_env_reads(source: str) -> set[str]:
    """Upper-case variables a script reads from its environment: never assigned in it, or assigned only as
    their own default (``NAME=${NAME:-x}``)."""
    used = set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", source))
    assigned = set(re.findall(r"^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)=", source, re.MULTILINE))
    self_defaulted = set(re.findall(r"^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)=\$\{\1:?-", source, re.MULTILINE))
    return (used - assigned) | self_defaulted


def settings_variables() -> list[tuple[str, ...]]:
    """Each field of the settings object as the variable names that set it (an alias gives several)."""
    prefix = Settings.model_config["env_prefix"]
    names = []
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.append(tuple(alias.choices) if isinstance(alias, AliasChoices) else (f"{prefix}{field_name}".upper(),))
    return names


def code_files(suffix: str) -> list[Path]:
    return sorted(p for d in CODE_DIRS for p in (ROOT / d).rglob(f"*{suffix}"))


def code_env_reads() -> set[str]:
    return {v for p in code_files(".py") for v in python_env_reads(p.read_text())} | {
        v for p in code_files(".sh") for v in shell_env_reads(p.read_text())
    }


def code_string_constants() -> set[str]:
    """Upper-case string literals of the code: names it hands to something that reads them (a dict of
    defaults set into os.environ in a loop)."""
    return {
        node.value
        for p in code_files(".py")
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"[A-Z][A-Z0-9_]+", node.value)
    }


def airflow_core_options() -> set[str]:
    """AIRFLOW__SECTION__KEY for every option of Airflow's own config.yml: variables Airflow itself reads."""
    package = Path(importlib.util.find_spec("airflow").submodule_search_locations[0])
    config = yaml.safe_load((package / "config_templates" / "config.yml").read_text())
    return {
        f"AIRFLOW__{section}__{key}".upper() for section, body in config.items() for key in (body.get("options") or {})
    }


def test_the_scanners_see_every_way_code_reads_the_environment():
    python = (
        'import os\nENV = "E_CONST"\nos.environ.get("E_GET")\nos.getenv("E_GETENV")\nos.environ["E_ITEM"]\n'
        'os.environ.setdefault("E_DEFAULT", "1")\nos.environ.get(ENV)\n"E_IN" in os.environ\n'
        'os.environ["E_WRITTEN"] = "1"\n'
    )
    assert python_env_reads(python) == {"E_CONST", "E_GET", "E_GETENV", "E_ITEM", "E_DEFAULT", "E_IN"}
    shell = 'S_OWN=${S_OWN:-1}\nLOCAL=x\necho "$S_READ $LOCAL ${S_BRACED} $lower"\n'
    assert shell_env_reads(shell) == {"S_OWN", "S_READ", "S_BRACED"}


def test_env_example_lists_every_variable_the_code_and_compose_read():
    listed = env_example_names(ENV_EXAMPLE)
    unlisted_fields = [names for names in settings_variables() if not set(names) & listed]
    unlisted_reads = sorted(code_env_reads() - listed - NOT_SETTINGS)
    unlisted_compose = sorted(set(compose_variables(COMPOSE)) - listed)
    assert unlisted_fields == [], f"settings fields missing from .env.example: {unlisted_fields}"
    assert unlisted_reads == [], f"variables the code reads, missing from .env.example: {unlisted_reads}"
    assert unlisted_compose == [], f"variables docker-compose.yaml reads, missing from .env.example: {unlisted_compose}"


def test_every_variable_in_env_example_is_read_somewhere():
    read = (
        {name for names in settings_variables() for name in names}
        | code_env_reads()
        | set(compose_variables(COMPOSE))
        | code_string_constants()
        | airflow_core_options()
    )
    unread = sorted(env_example_names(ENV_EXAMPLE) - read)
    assert unread == [], f".env.example lists variables nothing reads: {unread}"
