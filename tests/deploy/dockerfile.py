"""A small Dockerfile reader, so tests run the image's own build commands instead of copies.

It understands what this repository's Dockerfile uses: line continuations, comments, stages
(`FROM ... AS name`), ARG, ENV (`key=value` pairs with `$VAR`/`${VAR:-default}` expansion),
WORKDIR, COPY and RUN (shell form, with BuildKit `--mount=...` flags, which only affect caching).
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

_VARIABLE = re.compile(r"\$(?:\{(?P<braced>\w+)(?::-(?P<default>[^}]*))?\}|(?P<bare>\w+))")


@dataclass(frozen=True)
class Instruction:
    """One instruction: its keyword (upper case), its raw arguments and its 1-based line."""

    keyword: str
    arguments: str
    line: int


@dataclass
class Stage:
    """A build stage: `FROM <base> AS <name>` and the instructions after it."""

    name: str
    base: str
    instructions: list[Instruction] = field(default_factory=list)

    def of(self, keyword: str) -> list[Instruction]:
        """This stage's instructions with `keyword` (ENV, RUN, ...), in order."""
        return [i for i in self.instructions if i.keyword == keyword]


def parse(path: Path) -> tuple[list[Instruction], list[Stage]]:
    """The instructions before the first FROM (global ARGs) and the stages, in file order."""
    logical: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue  # comments vanish, even inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        logical.append((start, " ".join(part for part in pending if part)))
        pending = []
    if pending:
        raise ValueError(f"{path}: the instruction at line {start} ends with a continuation")

    preamble: list[Instruction] = []
    stages: list[Stage] = []
    for number, text in logical:
        keyword, _, arguments = text.partition(" ")
        instruction = Instruction(keyword.upper(), arguments.strip(), number)
        if instruction.keyword == "FROM":
            words = instruction.arguments.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name=name, base=words[0]))
        elif stages:
            stages[-1].instructions.append(instruction)
        else:
            preamble.append(instruction)
    return preamble, stages


def expand(text: str, env: dict[str, str]) -> str:
    """Docker's variable substitution: `$VAR`, `${VAR}`, `${VAR:-default}` (unset: empty)."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        value = env.get(name, "")
        if not value and match.group("default") is not None:
            return match.group("default")
        return value

    return _VARIABLE.sub(substitute, text)


def assignments(instruction: Instruction, env: dict[str, str]) -> dict[str, str]:
    """The `key=value` pairs of an ENV or ARG, expanded against `env` (ARG without a value: "")."""
    pairs: dict[str, str] = {}
    for word in shlex.split(instruction.arguments):
        key, sep, value = word.partition("=")
        pairs[key] = expand(value, env) if sep else env.get(key, "")
    return pairs


def shell_command(instruction: Instruction) -> str:
    """A RUN's shell command without its BuildKit flags (`--mount=...`, `--network=...`)."""
    command = instruction.arguments
    while command.startswith("--"):
        _, _, command = command.partition(" ")
        command = command.lstrip()
    if command.startswith("["):
        raise ValueError(f"line {instruction.line}: exec-form RUN is not supported here")
    return command


def ignore_patterns(context: Path) -> list[str]:
    """The build context's .dockerignore patterns, comments and blank lines dropped."""
    lines = (context / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps `relative` (a context-relative path) out of the context."""
    for pattern in patterns:
        if pattern.startswith("**/"):
            tail = pattern[3:]
            if any(fnmatch.fnmatch(part, tail) for part in relative.split("/")):
                return True
        elif fnmatch.fnmatch(relative, pattern) or relative.startswith(pattern.rstrip("/") + "/"):
            return True
    return False
