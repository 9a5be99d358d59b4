"""Check docker-compose.yaml without Docker: the compose-spec schema, then what the schema cannot see.

    python scripts/compose_check.py [docker-compose.yaml] [--env-example .env.example]

1. Schema: ``check-jsonschema --builtin-schema vendor.compose-spec`` (vendored in the package, so offline).
2. Semantics, the mistakes ``docker compose up`` would only report at start-up, or never:

   - ``depends_on``: every target is a service; ``service_healthy`` targets have a health check.
   - ``volumes``: every named volume a service mounts is declared under the top-level ``volumes:``.
   - ``interpolation``: every ``${VAR}`` has a default (``${VAR:-x}``) or is listed in ``.env.example``.
   - ``ports``: no host port is published twice.
   - ``healthcheck``: every service has one, or is a one-shot that another service waits for with
     ``condition: service_completed_successfully``.

Prints one line per problem, ``FILE:LINE: SERVICE: RULE: what is wrong``, and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import clean_stop
import yaml

ROOT = Path(__file__).resolve().parents[1]
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}, ${NAME:+alt}, ${NAME+alt}, $NAME
INTERPOLATION = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
ENV_EXAMPLE_ENTRY = re.compile(r"^\s*#?\s*([A-Za-z_][A-Za-z0-9_]*)=")
SERVICE_IN_SCHEMA_PATH = re.compile(r"^\$\.services(?:\.([A-Za-z0-9_.-]+?)|\['([^']+)'\])(?:[.\[]|$)")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    where: str  # "service NAME" or the top-level key (x-airflow-common, volumes)
    rule: str
    message: str

    def line_text(self) -> str:
        return f"{self.file}:{self.line}: {self.where}: {self.rule}: {self.message}"


def env_example_names(path: Path) -> set[str]:
    """Variables listed in .env.example, set (``NAME=value``) or shown commented out (``# NAME=value``)."""
    if not path.exists():
        return set()
    return {m.group(1) for line in path.read_text().splitlines() if (m := ENV_EXAMPLE_ENTRY.match(line))}


def interpolations(text: str) -> Iterator[tuple[str, bool]]:
    """``(name, has_default)`` for every variable compose would substitute in ``text`` (``$$`` is a literal $)."""
    for match in INTERPOLATION.finditer(text.replace("$$", "")):
        name = match.group("braced") or match.group("bare")
        op = match.group("op") or ""
        # ":-"/"-" give a default and ":+"/"+" an alternative; ":?"/"?" and a bare ${NAME} need the value
        yield name, op.lstrip(":") in ("-", "+")
        if match.group("arg"):
            yield from interpolations(match.group("arg"))


def compose_variables(compose_file: Path) -> dict[str, bool]:
    """Every variable the compose file interpolates -> whether every use of it has a default."""
    variables: dict[str, bool] = {}
    for scalar in _scalars(yaml.compose(compose_file.read_text(), Loader=yaml.SafeLoader), set()):
        for name, has_default in interpolations(scalar.value):
            variables[name] = variables.get(name, True) and has_default
    return variables


def _scalars(node: yaml.Node, seen: set[int]) -> Iterator[yaml.ScalarNode]:
    """Every scalar of the document once: an anchor's nodes are shared by its aliases, so visit them once."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.ScalarNode):
        yield node
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _scalars(item, seen)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _scalars(key, seen)
            yield from _scalars(value, seen)


def _sections(root: yaml.MappingNode) -> list[tuple[str, yaml.Node]]:
    """``(where, node)`` in file order: each service on its own, every other top-level key as a whole."""
    sections = []
    for key, value in root.value:
        if key.value == "services" and isinstance(value, yaml.MappingNode):
            sections += [(f"service {name.value}", node) for name, node in value.value]
        else:
            sections.append((key.value, value))
    return sections


def _service_lines(root: yaml.MappingNode) -> dict[str, int]:
    for key, value in root.value:
        if key.value == "services" and isinstance(value, yaml.MappingNode):
            return {name.value: name.start_mark.line + 1 for name, _ in value.value}
    return {}


def schema_problems(compose_file: Path, service_lines: dict[str, int], label: str) -> list[Problem]:
    """The compose-spec JSON schema's verdict, one Problem per error."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            "--output-format",
            "json",
            str(compose_file),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        detail = (result.stderr or result.stdout).strip().splitlines()
        return [Problem(label, 1, "file", "schema", f"check-jsonschema failed: {detail[-1] if detail else '?'}")]
    problems = []
    for error in report.get("errors", []):
        path = error.get("path", "$")
        match = SERVICE_IN_SCHEMA_PATH.match(path)
        service = (match.group(1) or match.group(2)) if match else None
        where = f"service {service}" if service else "file"
        line = service_lines.get(service, 1) if service else 1
        problems.append(Problem(label, line, where, "schema", f"{error.get('message', '?')} (at {path})"))
    for error in report.get("parse_errors", []):
        problems.append(Problem(label, 1, "file", "schema", error.get("message", "could not be parsed")))
    return problems


def _depends_on(service: dict) -> dict[str, str]:
    """Target -> condition (the short list form means service_started)."""
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        return {name: "service_started" for name in depends}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in depends.items()}


def _named_volumes(service: dict) -> Iterator[str]:
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            if volume.get("type", "volume") == "volume" and volume.get("source"):
                yield volume["source"]
            continue
        source, sep, _ = str(volume).partition(":")
        # "name:/path" mounts a named volume; "./x:/path", "/x:/path" and "~/x:/path" bind a host path, and a
        # lone "/path" is an anonymous volume
        if sep and not source.startswith(("/", ".", "~", "$")):
            yield source


def _host_ports(service: dict) -> Iterator[tuple[str, str]]:
    """``(host_ip/port/protocol, as written)`` for every published host port (ranges expanded)."""
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            if port.get("published") is not None:
                protocol = port.get("protocol", "tcp")
                host_ip = port.get("host_ip", "")
                for number in _expand(str(port["published"])):
                    yield f"{host_ip}/{number}/{protocol}", str(port["published"])
            continue
        text, _, protocol = str(port).partition("/")
        host_ip = ""
        if text.startswith("["):  # [::1]:8080:80
            host_ip, _, text = text[1:].partition("]:")
        parts = text.split(":")
        if len(parts) == 1:
            continue  # container port only: Docker picks a free host port
        if len(parts) == 3:
            host_ip = parts.pop(0)
        published = parts[0]
        for number in _expand(published):
            yield f"{host_ip}/{number}/{protocol or 'tcp'}", str(port)


def _expand(published: str) -> list[str]:
    low, sep, high = published.partition("-")
    if sep and low.isdigit() and high.isdigit():
        return [str(n) for n in range(int(low), int(high) + 1)]
    return [published]


def semantic_problems(data: dict, root: yaml.MappingNode, env_names: set[str], label: str) -> list[Problem]:
    service_lines = _service_lines(root)
    services = data.get("services") or {}
    declared_volumes = set((data.get("volumes") or {}).keys())
    problems: list[Problem] = []

    def problem(service: str, rule: str, message: str) -> None:
        problems.append(Problem(label, service_lines.get(service, 1), f"service {service}", rule, message))

    waited_for_completion = {
        target
        for service in services.values()
        for target, condition in _depends_on(service).items()
        if condition == "service_completed_successfully"
    }
    published: dict[str, str] = {}
    for name, service in services.items():
        service = service or {}
        for target, condition in _depends_on(service).items():
            if target not in services:
                problem(name, "depends_on", f"'{target}' is not a service")
            elif condition == "service_healthy" and not _has_healthcheck(services[target] or {}):
                problem(name, "depends_on", f"waits for '{target}' to be healthy, but '{target}' has no healthcheck")
        for volume in _named_volumes(service):
            if volume not in declared_volumes:
                problem(name, "volumes", f"named volume '{volume}' is not declared under top-level volumes:")
        for key, written in _host_ports(service):
            if key in published:
                problem(name, "ports", f"host port {written} is already published by service {published[key]}")
            else:
                published[key] = name
        if not _has_healthcheck(service) and name not in waited_for_completion:
            problem(
                name,
                "healthcheck",
                "no healthcheck, and no service waits for it with condition: service_completed_successfully",
            )

    # one shared "seen": a scalar of an anchor is checked once, where it is written, not in every alias
    seen: set[int] = set()
    reported: set[str] = set()
    for where, node in _sections(root):
        for scalar in _scalars(node, seen):
            for variable, has_default in interpolations(scalar.value):
                if has_default or variable in env_names or variable in reported:
                    continue
                reported.add(variable)  # one line per variable, at its first use
                problems.append(
                    Problem(
                        label,
                        scalar.start_mark.line + 1,
                        where,
                        "interpolation",
                        f"${{{variable}}} has no default and is not listed in .env.example",
                    )
                )
    return problems


def _has_healthcheck(service: dict) -> bool:
    check = service.get("healthcheck")
    return bool(check) and not check.get("disable", False) and check.get("test") not in (["NONE"], "NONE")


def check(compose_file: Path, env_example: Path) -> list[Problem]:
    label = compose_file.name
    text = compose_file.read_text()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return [Problem(label, mark.line + 1 if mark else 1, "file", "yaml", str(exc).splitlines()[0])]
    if not isinstance(root, yaml.MappingNode) or not isinstance(data, dict):
        return [Problem(label, 1, "file", "yaml", "the file is not a mapping of top-level keys")]
    problems = schema_problems(compose_file, _service_lines(root), label) + semantic_problems(
        data, root, env_example_names(env_example), label
    )
    return sorted(problems, key=lambda p: p.line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("compose_file", nargs="?", type=Path, default=ROOT / "docker-compose.yaml")
    parser.add_argument(
        "--env-example",
        type=Path,
        default=None,
        help="the .env.example to check ${VAR}s against (default: next to the compose file)",
    )
    args = parser.parse_args(argv)
    env_example = args.env_example or args.compose_file.parent / ".env.example"
    problems = check(args.compose_file, env_example)
    for problem in problems:
        print(problem.line_text())
    if problems:
        return 1
    print(f"{args.compose_file.name}: ok ({env_example.name} checked)")
    return 0


if __name__ == "__main__":
    with clean_stop.on_signals():
        sys.exit(main())
