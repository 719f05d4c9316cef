"""The getting-started walkthrough (docs/getting-started.md) works when pasted in order on a fresh
`make run`.

What runs: every `$ ` command of a ```console block between the lines `<!-- walkthrough` and
`<!-- /walkthrough -->` of docs/getting-started.md (a line ending in `\\` continues the command;
the lines after a command, up to the next `$ ` or the end of the block, are what the page says
it prints). Each runs with bash, in order, against a demo server started as make run starts one
(tests/config/demo_server.py), in a shell whose exported variables carry over from one command
to the next. An `export` of literal values is how the reader copies a value: one that the
previous answer shows (a challenge id, a code, a token) takes the real answer's value at the
same place; else `API`, `APP_ID`, `API_KEY` and `MEMBER_TOKEN` take what make run printed (here,
what seed_demo printed); anything else stands as written, and a `…` placeholder left over fails.

What is checked: each command exits 0, prints nothing on stderr, and prints an answer of the
shape shown: the same keys, recursively, the same JSON types and list lengths, and the same
values where a program branches or a reader adds up (`success`, error `code`, `details.reason`,
`type`, `event`, `status`, `channel`, `currency`, `token_type`, booleans and amounts); ids,
times, tokens, secrets and messages may differ. A ```text block in the walkthrough is what the
demo webhook receiver printed: each of its lines' event types reaches the receiver, signed.

README_WRITE_ANSWERS=1 writes the real answers into the page instead (JWTs shortened to `eyJ…`,
make run's ports, and the exports copied from an answer updated with it); review the diff.
"""

import json
import os
import re
import shlex
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from tests.config.demo_server import ROOT, DemoServer, demo_server

PAGE = ROOT / "docs" / "getting-started.md"
BEGIN, END = "<!-- walkthrough", "<!-- /walkthrough -->"
# Values that must be as shown, by key; amounts (decimals) and booleans always.
EXACT_KEYS = {"success", "code", "reason", "type", "event", "status", "channel", "currency"}
EXACT_KEYS |= {"token_type", "reward_system", "pin_set"}
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")
WRITE = os.environ.get("README_WRITE_ANSWERS") == "1"


@dataclass
class Step:
    line: int  # the command's first line in the page, 1-based
    command: str
    shown: str  # what the page shows it prints
    shown_lines: tuple[int, int]  # [start, end) of those lines, 0-based


@dataclass
class Walkthrough:
    lines: list[str]
    steps: list[Step]
    receiver_lines: list[str]  # the ```text blocks: what the demo receiver printed


def walkthrough(text: str) -> Walkthrough:
    lines = text.splitlines()
    begins = [i for i, line in enumerate(lines) if line.startswith(BEGIN)]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    assert len(begins) == len(ends) == 1, "one walkthrough, marked at its start and end"
    assert begins[0] < ends[0]
    steps: list[Step] = []
    receiver: list[str] = []
    i = begins[0]
    while i < ends[0]:
        fence = lines[i].strip()
        if fence not in ("```console", "```text"):
            i += 1
            continue
        j = i + 1
        while lines[j].strip() != "```":
            j += 1
        if fence == "```text":
            receiver += [line for line in lines[i + 1 : j] if line.strip()]
        else:
            steps += _console_steps(lines, i + 1, j)
        i = j + 1
    return Walkthrough(lines, steps, receiver)


def _console_steps(lines: list[str], start: int, end: int) -> list[Step]:
    steps = []
    i = start
    assert lines[i].startswith("$ "), f"{PAGE.name}:{i + 1}: a console block starts with `$ `"
    while i < end:
        first = i
        command = [lines[i][2:]]
        while command[-1].endswith("\\"):
            i += 1
            command.append(lines[i])
        i += 1
        out_start = i
        while i < end and not lines[i].startswith("$ "):
            i += 1
        out_end = i
        while out_end > out_start and not lines[out_end - 1].strip():
            out_end -= 1
        shown = "\n".join(lines[out_start:out_end])
        steps.append(Step(first + 1, "\n".join(command), shown, (out_start, out_end)))
    return steps


def _parse(text: str):
    return json.loads(text, parse_float=Decimal)


def _leaves(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


def _at(value, path):
    for part in path:
        value = value[part]
    return value


def _kind(value) -> str:
    return type(value).__name__


def differences(shown, real, path="") -> list[str]:
    """How `real` differs from `shown` in shape (and in the values that must be as shown)."""
    if _kind(shown) != _kind(real):
        return [f"{path or '.'}: {_kind(real)} {real!r}, shown {_kind(shown)} {shown!r}"]
    if isinstance(shown, dict):
        if shown.keys() != real.keys():
            missing, extra = shown.keys() - real.keys(), real.keys() - shown.keys()
            return [f"{path or '.'}: keys missing {sorted(missing)}, not shown {sorted(extra)}"]
        return [d for key in shown for d in differences(shown[key], real[key], f"{path}.{key}")]
    if isinstance(shown, list):
        if len(shown) != len(real):
            return [f"{path}: {len(real)} items, shown {len(shown)}"]
        return [
            d
            for n, (s, r) in enumerate(zip(shown, real, strict=True))
            for d in differences(s, r, f"{path}[{n}]")
        ]
    key = path.rsplit(".", 1)[-1]
    exact = isinstance(shown, (bool, Decimal)) or key in EXACT_KEYS
    if exact and shown != real:
        return [f"{path}: {real!r}, shown {shown!r}"]
    return []


def shortened(text: str) -> str:
    """A real answer as the page shows it: JWTs cut after the header and `{"iss"`."""
    return JWT.sub(lambda m: m.group(0)[:45] + "…", text)


class Shell:
    """bash, one command at a time, with the exported variables carried over."""

    def __init__(self, env: dict[str, str], folder: Path):
        self.env = env
        self.state = folder / "exports.sh"
        self.state.write_text("")

    def run(self, command: str) -> subprocess.CompletedProcess:
        script = (
            f"set -o pipefail\nsource {shlex.quote(str(self.state))}\n{command}\n"
            f"status=$?\nexport -p > {shlex.quote(str(self.state))}\nexit $status\n"
        )
        return subprocess.run(
            ["/bin/bash", "-c", script],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )


def copied_exports(step: Step, made_run: dict[str, str], previous: tuple[Step, str] | None):
    """The `export` line as a reader types it: a value the previous answer shows is copied from
    the real answer (at the same place), the others are make run's credentials or as written.
    Returns the command, {shown value: real value as shown} and what could not be copied."""
    words = shlex.split(step.command, comments=True)
    if not words or words[0] != "export" or "$" in step.command:
        return step.command, {}, []
    shown_before, real_before = _json_or_none(previous[0].shown if previous else ""), None
    if previous:
        real_before = _json_or_none(previous[1])
    assigned, copied, problems = [], {}, []
    for word in words[1:]:
        name, _, value = word.partition("=")
        real = made_run.get(name, value)
        paths = [path for path, leaf in _leaves(shown_before) if leaf == value]
        if paths:
            try:
                real = str(_at(real_before, paths[0]))
                copied[value] = shortened(real)
            except (KeyError, IndexError, TypeError):
                problems.append(f"{name}: the answer above has no {'.'.join(map(str, paths[0]))}")
        assert "…" not in value or name in made_run or copied, (
            f"{PAGE.name}:{step.line}: {name}={value} is a placeholder nothing fills"
        )
        assigned.append(f"{name}={shlex.quote(real)}")
    return "export " + " ".join(assigned), copied, problems


def _json_or_none(text: str):
    try:
        return _parse(text)
    except ValueError:
        return None


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[DemoServer]:
    folder = tmp_path_factory.mktemp("readme")
    with demo_server("readme", folder / "server.log") as running:
        yield running


def test_every_walkthrough_command_answers_as_the_readme_shows(server, tmp_path):
    text = PAGE.read_text()
    walk = walkthrough(text)
    assert len(walk.steps) > 40, "the walkthrough was found"
    made_run = {
        "API": server.api,
        "APP_ID": server.credentials["app_id"],
        "API_KEY": server.credentials["api_key"],
        "MEMBER_TOKEN": server.credentials["member_token"],
    }
    shell = Shell(server.env, tmp_path)
    failures: list[str] = []
    edits: list[tuple[Step, str, dict[str, str]]] = []
    previous: tuple[Step, str] | None = None
    for step in walk.steps:
        command, copied, problems = copied_exports(step, made_run, previous)
        done = shell.run(command)
        real = done.stdout.strip()
        edits.append((step, real, copied))
        where = f"{PAGE.name}:{step.line}: $ {step.command.splitlines()[0]}"
        failures += [f"{where}\n  {problem}" for problem in problems]
        if done.returncode or done.stderr:
            failures.append(f"{where}\n  exit {done.returncode}: {done.stderr.strip()}\n  {real}")
        elif not step.shown:
            if real:
                failures.append(f"{where}\n  printed {real!r}, the page shows nothing")
        else:
            try:
                found = differences(_parse(step.shown), _parse(real))
            except ValueError as exc:
                found = [f"not JSON ({exc}): {real!r}"]
            if found:
                failures.append(f"{where}\n  " + "\n  ".join(found) + f"\n  real: {real}")
        if step.shown:
            previous = (step, real)
    if WRITE:
        PAGE.write_text(written(walk.lines, edits, server))

    failures += receiver_failures(server, walk.receiver_lines)
    assert not failures, "\n\n".join(failures)


def as_make_run(text: str, server: DemoServer) -> str:
    """An answer with make run's ports in place of the test server's."""
    hooks = f"http://127.0.0.1:{server.hook_port}/"
    return text.replace(server.base_url, "http://127.0.0.1:8000").replace(
        hooks, "http://127.0.0.1:8001/"
    )


def written(
    lines: list[str], edits: list[tuple[Step, str, dict[str, str]]], server: DemoServer
) -> str:
    """The page with the real answers shown, and the exports that copy them updated."""
    lines = list(lines)
    for step, real, copied in reversed(edits):
        start, end = step.shown_lines
        lines[start:end] = [as_make_run(shortened(real), server)] if real else []
        for shown_value, new_value in copied.items():
            lines[step.line - 1] = lines[step.line - 1].replace(shown_value, new_value)
    return "\n".join(lines) + "\n"


RECEIVED = re.compile(r"^(evt_\w+) ([\w.]+): (.*)$")


def _received(lines: list[str]) -> list[re.Match[str]]:
    return [m for m in map(RECEIVED.match, lines) if m]


def receiver_failures(server: DemoServer, shown: list[str]) -> list[str]:
    """The event types the page shows the receiver printing reach it, each signed."""
    assert len(_received(shown)) == len(shown), "receiver lines are `evt_… type: verdict`"
    wanted = Counter(m.group(2) for m in _received(shown))
    deadline = time.monotonic() + 20
    while True:
        lines = _received(server.output().splitlines())
        got = Counter(m.group(2) for m in lines if m.group(3) == "signature verifies")
        if not wanted - got or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    failures = [
        f"the receiver printed {m.group(0)!r}" for m in lines if m.group(3) != "signature verifies"
    ]
    if wanted - got:
        failures.append(
            f"the receiver never got {dict(wanted - got)}; it printed {[m.group(0) for m in lines]}"
        )
    return failures
