"""The web page in Debian's Chromium (headless, driven by Playwright; no browser download)
against the real service and Ray: submit from the form and watch the job to an evaluation
video, see a field's 422 message, and be told when the token is wrong.

The first test saves its job-view screenshot under the test's tmp_path; with
RLDOJO_DOCS_SCREENSHOT=1 it also copies it to docs/job-view.png, the README's picture.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright

from service.client import Client
from tests.service.conftest import ALICE, CAROL, Server

CHROMIUM = Path("/usr/bin/chromium")
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "job-view.png"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SLOW_MS = 150_000  # a Ray job on 2 busy cores: start, train or evaluate

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium (make system-deps installs it)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield launched
        launched.close()


@pytest.fixture()
def js_errors() -> list[str]:
    return []


@pytest.fixture()
def page(browser: Any, server: Server, js_errors: list[str]) -> Iterator[Any]:
    """A fresh tab (empty session storage) on the page, collecting uncaught script errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 960})
    tab = context.new_page()
    tab.on("pageerror", lambda error: js_errors.append(str(error)))
    tab.goto(server.url)
    yield tab
    context.close()


def sign_in(page: Any, token: str) -> None:
    page.fill("#token", token)
    page.click("text=Use token")


def open_new_job(page: Any) -> None:
    """The New job form, once the service's settings for its algorithm and env are filled in."""
    page.click("nav >> text=New job")
    expect(page.locator("#defaults-note")).to_contain_text("Filled in")


def test_submit_watch_and_evaluate_from_the_page(
    page: Any, alice: Client, js_errors: list[str], tmp_path: Path
) -> None:
    sign_in(page, ALICE)
    expect(page.locator("#jobs")).to_be_visible()
    open_new_job(page)
    page.select_option("#f-algorithm", "q_learning")
    expect(page.locator("[id='f-config.alpha']")).to_have_value("0.01")  # the API's default
    page.select_option("#f-env", "rldojo/GridWorld-v0")
    page.fill("[id='f-stop.iterations']", "10")
    page.fill("#f-seed", "1")
    page.click("#submit-form button[type=submit]")
    page.wait_for_url(re.compile(r"#/jobs/[0-9a-f]+$"))
    job_id = page.url.rsplit("/", 1)[1]
    assert alice.job(job_id)["spec"]["stop"]["iterations"] == 10

    # The live curve: one line per trial, drawn from the SSE stream while the job runs.
    page.wait_for_function(
        "() => [...document.querySelectorAll('#return-chart path.series')]"
        ".some(line => Number(line.dataset.points) >= 2)",
        timeout=SLOW_MS,
    )
    expect(page.locator("#job-status")).to_have_text("SUCCEEDED", timeout=SLOW_MS)
    line = page.locator("#return-chart path.series")
    expect(line).to_have_attribute("data-points", str(len(alice.metrics(job_id))))
    expect(page.locator("#checkpoints tbody tr")).to_have_count(1)  # at iteration 10
    expect(page.locator("#log")).to_contain_text("iter 10")

    page.click("#evaluate")
    video = page.locator("#eval-video")
    # The MP4 loads and Chromium decodes frames of it (H.264 plays in Debian's build).
    page.wait_for_function(
        "() => { const v = document.querySelector('#eval-video');"
        " return v.readyState >= 2 && v.getVideoPlaybackQuality().totalVideoFrames > 0; }",
        timeout=SLOW_MS,
    )
    assert video.evaluate("v => v.videoWidth * v.videoHeight") > 0
    expect(page.locator("#eval-score strong")).to_have_text("100")
    expect(page.locator("#eval-score")).to_contain_text("over 10 episode(s)")

    shot = tmp_path / "job-view.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("RLDOJO_DOCS_SCREENSHOT") == "1":  # refresh the README's picture
        shutil.copyfile(shot, DOCS_SCREENSHOT)
    assert js_errors == []


def test_cluster_view_shows_the_head_and_its_cpus(page: Any, js_errors: list[str]) -> None:
    sign_in(page, ALICE)
    page.click("nav >> text=Cluster")
    expect(page.locator("#nodes tbody tr")).to_have_count(1)  # the embedded head
    expect(page.locator("#nodes tbody tr td").nth(3)).to_have_text("head")
    expect(page.locator("#cluster-totals [data-resource=CPU] strong")).to_contain_text("/ 2")
    assert js_errors == []


def test_an_invalid_value_shows_the_api_message_beside_its_field(
    page: Any, alice: Client, js_errors: list[str]
) -> None:
    before = len(alice.jobs())
    sign_in(page, ALICE)
    open_new_job(page)
    page.fill("[id='f-config.alpha']", "abc")
    page.click("#submit-form button[type=submit]")
    error = page.locator("[data-field='config.alpha'] .field-error")
    expect(error).to_have_text("Input should be a valid number, unable to parse string as a number")
    expect(page.locator("[data-field='config.gamma'] .field-error")).to_be_hidden()
    assert page.url.endswith("#/new") and len(alice.jobs()) == before
    assert js_errors == []


def test_the_env_choice_fills_that_envs_settings_and_keeps_typed_values(
    page: Any, js_errors: list[str]
) -> None:
    sign_in(page, ALICE)
    open_new_job(page)
    page.select_option("#f-algorithm", "dqn")
    lr, capacity = (
        page.locator("[id='f-config.lr']"),
        page.locator("[id='f-config.replay_capacity']"),
    )
    expect(page.locator("#defaults-note")).to_contain_text("dqn's settings for CartPole-v1")
    expect(lr).to_have_value("0.001")  # book 5.2
    expect(capacity).to_have_value("2000")
    page.fill("[id='f-config.gamma']", "0.95")  # typed by the user: no preset overwrites it
    page.select_option("#f-env", "rldojo/Breakout-v0")
    expect(page.locator("#defaults-note")).to_contain_text("for rldojo/Breakout-v0")
    expect(lr).to_have_value("0.0001")  # book 6.2
    expect(capacity).to_have_value("100000")
    expect(page.locator("[id='f-config.gamma']")).to_have_value("0.95")
    expect(page.locator("[id='f-stop.env_steps']")).to_have_attribute(
        "placeholder", "10000000 (default)"
    )
    assert js_errors == []


def test_a_wrong_token_says_not_authorised(page: Any, js_errors: list[str]) -> None:
    sign_in(page, "not-a-valid-token")
    expect(page.locator("#auth-error")).to_contain_text("Not authorised")
    expect(page.locator("#token")).to_be_visible()  # asked again, not a blank page
    assert js_errors == []


def test_breakout_evaluation_video_plays_in_chromium(browser: Any, tmp_path: Path) -> None:
    """The grid world's video plays in the first test; Breakout's frames are larger and odd."""
    import envs
    from algorithms.evaluation import write_video

    env = envs.make("rldojo/Breakout-v0", {}, render_mode="rgb_array")
    env.reset(seed=0)
    frames = [env.render()]
    for _ in range(40):
        env.step(env.action_space.sample())
        frames.append(env.render())
    env.close()
    mp4 = write_video(frames, tmp_path / "breakout.mp4")
    tab = browser.new_page()
    tab.set_content("<video muted></video>")
    played = tab.evaluate(
        """async (data) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const video = document.querySelector("video");
            const loaded = new Promise((ok, fail) => {
                video.onloadeddata = ok;
                video.onerror = () => fail(new Error(`media error ${video.error.code}`));
            });
            video.src = URL.createObjectURL(new Blob([bytes], { type: "video/mp4" }));
            await loaded;
            await video.play();
            await new Promise((ok) => video.requestVideoFrameCallback(ok));  // a frame shown
            return { width: video.videoWidth, height: video.videoHeight,
                     frames: video.getVideoPlaybackQuality().totalVideoFrames };
        }""",
        base64.b64encode(mp4.read_bytes()).decode(),
    )
    tab.close()
    assert (played["width"], played["height"]) == (160, 210)
    assert played["frames"] > 0


def test_every_field_error_shows_at_once_with_a_summary_and_focus(
    page: Any, alice: Client, js_errors: list[str]
) -> None:
    before = len(alice.jobs())
    sign_in(page, ALICE)
    open_new_job(page)
    page.select_option("#f-algorithm", "q_learning")
    expect(page.locator("[id='f-config.alpha']")).to_have_value("0.01")
    page.fill("[id='f-stop.iterations']", "0")
    page.fill("[id='f-config.alpha']", "abc")
    page.fill("[id='f-config.gamma']", "5")
    page.fill("[id='f-env_config']", '{"size": 0}')
    page.click("#submit-form button[type=submit]")
    summary = page.locator("#error-summary")
    expect(summary).to_contain_text("4 problem(s)")
    for field in ("stop.iterations", "config.alpha", "env_config.size", "config.gamma"):
        expect(summary).to_contain_text(field)
    expect(page.locator("[data-field='stop.iterations'] .field-error")).to_contain_text("greater")
    expect(page.locator("[data-field='env_config'] .field-error")).to_contain_text("from 2 to 50")
    focused = page.evaluate("document.activeElement.id")
    assert focused == "f-stop.iterations"  # the first field with a problem, in page order
    assert len(alice.jobs()) == before
    assert js_errors == []


def test_a_failed_job_says_why_and_offers_nothing_that_cannot_work(
    page: Any, server: Server, carol: Client, js_errors: list[str]
) -> None:
    # carol runs one job at a time, so her second waits QUEUED; its compiled job on storage is
    # broken meanwhile (as a hand edit would), and the trainer that reads it there fails.
    first = carol.submit({"algorithm": "q_learning", "stop": {"iterations": 100_000}})
    second = carol.submit({"algorithm": "q_learning", "stop": {"iterations": 5}})
    assert carol.job(second.id).status == "QUEUED"
    compiled = server.data_dir / "storage" / "jobs" / second.id / "compiled.json"
    compiled.write_text(json.dumps({**json.loads(compiled.read_text()), "stop": "never"}))
    assert carol.stop(first.id, wait_s=120).status == "STOPPED"
    final = carol.wait(second.id, timeout=300)
    assert final.status == "FAILED"
    assert final.message.startswith("ValueError: compiled.json in "), final.message
    assert "is unusable: stop: " in final.message, final.message
    assert "\x1b" not in final.message and "\n" not in final.message

    sign_in(page, CAROL)
    page.goto(f"{server.url}/#/jobs/{second.id}")
    failure = page.locator("#job-failure")
    expect(failure).to_contain_text(final.message)
    expect(page.locator("#resume")).to_be_disabled()  # no checkpoint to resume from
    expect(page.locator("#evaluate")).to_be_disabled()
    assert js_errors == []


def test_compare_leaderboard_and_webhooks_views(
    page: Any, alice: Client, js_errors: list[str]
) -> None:
    base = {"algorithm": "q_learning", "env": "rldojo/GridWorld-v0", "stop": {"iterations": 3}}
    first = alice.submit({**base, "name": "alpha-0.1", "config": {"alpha": 0.1}, "seed": 1})
    second = alice.submit({**base, "name": "alpha-0.3", "config": {"alpha": 0.3}, "seed": 1})
    for job in (first, second):
        assert alice.wait(job.id, timeout=SLOW_MS / 1000).status == "SUCCEEDED"
    evaluation = alice.evaluate(first.id, episodes=2)
    assert alice.wait_evaluation(evaluation.id, timeout=SLOW_MS / 1000).status == "SUCCEEDED"
    sign_in(page, ALICE)

    # Picked in the job list, compared: a line per job and the one setting that differs.
    for job in (first, second):
        page.locator(f"tr[data-job='{job.id}'] input.pick").check()
    page.click("#compare")
    page.wait_for_url(re.compile(r"#/compare/"))
    expect(page.locator("#compare-jobs li")).to_have_count(2)
    expect(page.locator("#compare-chart path.series")).to_have_count(2)
    alpha_row = page.locator("#differences tbody tr", has_text="config.alpha")
    expect(alpha_row).to_contain_text("0.1")
    expect(alpha_row).to_contain_text("0.3")
    expect(page.locator("#differences tbody")).not_to_contain_text("config.gamma")

    # The evaluated checkpoint is on the leaderboard of its env.
    page.click("nav >> text=Leaderboard")
    page.select_option("#leaderboard-env", "rldojo/GridWorld-v0")
    expect(page.locator(f"#leaderboard tbody tr a[href='#/jobs/{first.id}']")).to_have_count(1)

    # A webhook added from the page: its secret shown once, listed, then removed.
    page.click("nav >> text=Webhooks")
    page.fill("#webhook-url", "http://127.0.0.1:9/rldojo")
    page.click("text=Add webhook")
    expect(page.locator("#webhook-secret")).to_contain_text("signing secret")
    (hook,) = [h for h in alice.webhooks() if h.url == "http://127.0.0.1:9/rldojo"]
    row = page.locator("#webhooks tbody tr", has_text=hook.id)
    expect(row).to_have_count(1)
    expect(row.locator(".webhook-state")).to_have_text("enabled")
    row.locator("text=Disable").click()  # then on again: PATCH /v1/webhooks/{id}
    expect(row.locator(".webhook-state")).to_contain_text("disabled by its owner")
    row.locator("text=Enable").click()
    expect(row.locator(".webhook-state")).to_have_text("enabled")
    row.locator("button.danger").click()
    expect(row).to_have_count(0)
    assert hook.id not in [h.id for h in alice.webhooks()]
    assert js_errors == []


def test_the_api_docs_render_offline_under_their_csp(browser: Any, server: Server) -> None:
    """Swagger UI from the package draws every route, breaking no rule of its CSP, and the tab
    asks nothing of any host but the server."""
    context = browser.new_context()
    tab = context.new_page()
    problems: list[str] = []
    elsewhere: list[str] = []
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    tab.on(
        "request",
        lambda request: (
            None if request.url.startswith(server.url) else elsewhere.append(request.url)
        ),
    )
    tab.goto(f"{server.url}/docs")
    expect(tab.locator(".opblock-summary-path", has_text="/v1/jobs/{job_id}/stop")).to_be_visible()
    tab.locator(".opblock-summary-path", has_text="/v1/jobs/validate").first.click()
    expect(tab.locator(".opblock-body").first).to_be_visible()
    context.close()
    assert problems == [] and elsewhere == []
