"""The compose stack's fixtures: the engine, the images, the running stack, and their timings.

Every phase is timed (engine start, base images, image build, stack start, each scenario) and the
times are printed at the end of the run, so `make test-compose` states what it measured.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.compose.engine import DockerEngine, build_base_images, build_image
from tests.compose.stack import ComposeStack

IMAGE_TAG = "compose-test"  # rldojo:compose-test, what docker-compose.yml's image names
WORKERS = 2


class Timings:
    """Named wall-clock durations, in the order they were measured."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def measure(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = time.monotonic() - started

    def lines(self) -> list[str]:
        return [f"{name:<44} {seconds:7.1f} s" for name, seconds in self.seconds.items()]


TIMINGS = Timings()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS.seconds:
        terminalreporter.section("compose stack timings")
        for line in TIMINGS.lines():
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def timings() -> Timings:
    return TIMINGS


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    running = DockerEngine(tmp_path_factory.mktemp("dockerd"))
    try:
        with TIMINGS.measure("engine: start dockerd (or find one)"):
            running.ensure()
        yield running
    finally:
        running.stop()  # only a daemon started here


@pytest.fixture(scope="session")
def image(engine: DockerEngine) -> str:
    with TIMINGS.measure("images: Debian, Python and PostgreSQL bases"):
        build_base_images(engine.docker)
    with TIMINGS.measure("images: rldojo (Dockerfile, wheelhouse)"):
        build_image(engine.docker, f"rldojo:{IMAGE_TAG}")
    return IMAGE_TAG


@pytest.fixture(scope="session")
def stack(
    engine: DockerEngine, image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ComposeStack]:
    """ray-head + 2 ray-workers + api + postgres, healthy; removed with its volumes at the end."""
    workdir = tmp_path_factory.mktemp("compose")
    running = ComposeStack(engine.docker, workdir, image_tag=image)
    try:
        with TIMINGS.measure("stack: up, every health check passing"):
            running.up(workers=WORKERS)
            running.wait_healthy()
        yield running
    finally:
        log = workdir / "compose.log"
        try:
            log.write_text(running.logs())
            print(f"compose logs: {log}")
        finally:
            running.down(volumes=True)


@pytest.fixture()
def timed(request: pytest.FixtureRequest) -> Iterator[None]:
    """Times the test that asks for it under its own name."""
    with TIMINGS.measure(f"scenario: {request.node.name.removeprefix('test_')}"):
        yield
