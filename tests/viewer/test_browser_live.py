"""A real browser watching recordings while they are written, in other processes: the replay
follows a `RolloutRecorder` run, a plain `Recorder` loop, and a 2-rank ``torchrun`` recording
(gloo, CPU); the slider grows, the live edge shows the pose of the newest committed step, a
killed recorder is reported with the ``rollrec recover`` command, and a finished recording goes
on in the finished file in the same page. The policy is switched off and on from the browser in
a session served by the rollout loop, and the file says so.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import rollrec
from rollrec.envs import GaitPolicy, WalkerEnv
from rollrec.io.live import LiveRollout, in_progress, open_live
from rollrec.loop.rollout import RolloutRecorder

from .conftest import FRAME_RE, labelled_input, readout, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals, torchrun")]

RECORDER = Path(__file__).with_name("live_recorder.py")
#: JS: the position the page gives a scene node, in the scene's (z-up) frame: its parents under
#: /replay add nothing, and the root's z-up rotation is left out.
NODE_POSITION_JS = """(name) => {
  const o = window.__viserMutable.nodeRefFromName[name];
  return o ? [o.position.x, o.position.y, o.position.z] : null;
}"""


def open_page(browser, url: str):
    """A page on the replay at ``url``, its frame readout shown (the notices are left alone: the
    page keeps updating, and a click on them can wait for it)."""
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.set_default_timeout(30000)
    page.goto(url)
    page.get_by_text(FRAME_RE).wait_for()
    return page


def start_recorder(path: Path, mode: str, steps: int, sleep: float, *, ranks: int = 1, num_envs: int = 8):
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo", PYTHONWARNINGS="ignore")
    args = [str(RECORDER), str(path), mode, str(steps), str(sleep), str(num_envs)]
    if ranks > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks), *args]
    else:
        cmd = [sys.executable, *args]
    with open(f"{path}.log", "w") as log:  # a file, not a pipe nobody reads: a full pipe would stall the recorder
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    proc.log = Path(log.name)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def frames(page) -> tuple[int, int]:
    """(frame shown, last frame) as the page says."""
    m = FRAME_RE.search(page.inner_text("body"))
    assert m, "no frame readout"
    return int(m.group(1)), int(m.group(2))


def shown_base(page) -> np.ndarray:
    return np.asarray(page.evaluate(NODE_POSITION_JS, "/replay/a/base"), np.float64)


def pids(path: Path, ranks: int) -> list[int]:
    files = [Path(f"{path}.pid-{r}") for r in range(ranks)]
    wait_for(lambda: all(f.exists() and f.read_text() for f in files), 60, "the recorder's pid files")
    return [int(f.read_text()) for f in files]


def check_live_edge(page, path: Path, pid_list: list[int], env: int) -> int:
    """Freeze the recorder(s); the page settles on the newest committed step and shows its pose."""
    for pid in pid_list:
        os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(0.5)  # a commit under way when the recorder stopped finishes or never happens
        with open_live(path) as ref:
            T = ref.T
            wait_for(lambda: frames(page) == (T - 1, T - 1), 20, f"the page at the live edge, frame {T - 1}")
            want = ref.read("base_pos", (T - 1, T), (env, env + 1))[0, 0]
        wait_for(lambda: np.allclose(shown_base(page), want, atol=1e-5), 10, "the robot at the newest pose")
        assert "LIVE" in page.inner_text("body")
        return T
    finally:
        for pid in pid_list:
            os.kill(pid, signal.SIGCONT)


@pytest.fixture
def served():
    """``serve(path)`` on a free port, stopped afterwards."""
    from rollrec.viewer import serve, stop_app

    apps = []

    def start(path, **kwargs):
        app = serve(path, port=0, block=False, **kwargs)
        apps.append(app)
        return app, f"http://127.0.0.1:{app.server.get_port()}"

    yield start
    for app in apps:
        stop_app(app)


def test_a_rollout_recorder_run_is_followed_to_its_finished_file(chromium, served, tmp_path):
    path = tmp_path / "live.npz"
    proc = start_recorder(path, "rollout", steps=100000, sleep=0.03)
    try:
        pid = pids(path, 1)
        wait_for(lambda: in_progress(path), 60, "the recording to start")
        app, url = served(path)
        page = open_page(chromium, url)
        page.evaluate("window.__sameDocument = 1")  # gone if the page were ever reloaded
        seen = {frames(page)[1]}
        wait_for(lambda: seen.add(frames(page)[1]) or len(seen) >= 4, 60, "the slider's maximum to grow")
        assert sorted(seen) == sorted(set(seen)) and max(seen) > min(seen)
        T = check_live_edge(page, path, pid, env=0)
        wait_for(lambda: frames(page)[1] > T - 1, 30, "the replay to grow again once the recorder goes on")
        os.kill(pid[0], signal.SIGINT)  # Ctrl-C: the rollout loop finishes the file with the steps so far
        assert proc.wait(timeout=120) == 0
        wait_for(lambda: "Recording finished" in page.inner_text("body"), 20, "the finished line")
        with rollrec.load(path) as r:
            final_T = r.T
            wait_for(lambda: frames(page)[1] == final_T - 1, 10, "the whole recording on the slider")
            page.get_by_role("button", name="◀ Back").click()  # the replay goes on in the finished file
            wait_for(lambda: frames(page)[0] == final_T - 2, 10, "a step back")
            want = np.asarray(r["base_pos"][final_T - 2, 0])
        wait_for(lambda: np.allclose(shown_base(page), want, atol=1e-5), 10, "the pose of the finished file")
        assert page.evaluate("window.__sameDocument") == 1
        assert app.state.rollout.status.value == "finished" and app.file_error is None
        page.close()
    finally:
        stop(proc)


def test_killing_a_recorder_loop_is_said_on_screen_naming_recover(chromium, served, tmp_path):
    path = tmp_path / "killed.npz"
    proc = start_recorder(path, "loop", steps=100000, sleep=0.02)
    try:
        pids(path, 1)
        wait_for(lambda: in_progress(path), 60, "the recording to start")
        _, url = served(path)
        page = open_page(chromium, url)
        first = frames(page)[1]
        wait_for(lambda: frames(page)[1] >= first + 20, 60, "the plain Recorder loop to be followed")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        wait_for(lambda: "Recording stopped" in page.inner_text("body"), 30, "the stopped line")
        body = page.inner_text("body")
        assert f"rollrec recover {path}" in body
        with LiveRollout(path) as ref:  # the committed steps stay on the slider
            assert frames(page)[1] == ref.T - 1
        page.close()
    finally:
        stop(proc)


@pytest.mark.filterwarnings("ignore::rollrec.io.sharded.MissingEnvsWarning")  # the ranks stop a few steps apart
def test_a_two_rank_torchrun_recording_is_followed(chromium, served, tmp_path):
    path = tmp_path / "sharded.npz"
    proc = start_recorder(path, "loop", steps=100000, sleep=0.04, ranks=2, num_envs=4)
    try:
        pid_list = pids(path, 2)
        directory = tmp_path / "sharded"
        wait_for(lambda: in_progress(directory) and all(
            (directory / f"rank-0000{r}.npz.partial.json").exists() for r in (0, 1)), 90, "both ranks to record")
        app, url = served(directory)
        page = open_page(chromium, url)
        assert "8 envs" in page.inner_text("body")
        box = labelled_input(page, "Env")
        box.fill("6")  # an env of rank 1
        box.press("Enter")
        wait_for(lambda: readout(page)[1] == 6, 10, "env 6")
        app.seek(10**9)  # back to the live edge after the env change
        seen = {frames(page)[1]}
        wait_for(lambda: seen.add(frames(page)[1]) or len(seen) >= 3, 60, "the slider's maximum to grow")
        check_live_edge(page, directory, pid_list, env=6)
        Path(f"{path}.stop").touch()  # each rank stops at its next step and closes its shard
        assert proc.wait(timeout=180) == 0, proc.log.read_text()[-3000:]
        wait_for(lambda: "Recording finished" in page.inner_text("body"), 30, "the finished line")
        with rollrec.load(directory) as r:
            assert r.meta["sharded"]["manifest_state"] == "complete"
            wait_for(lambda: frames(page)[1] == r.T - 1, 10, "every step on the slider")
        page.close()
    finally:
        stop(proc)


def test_the_policy_is_switched_off_from_the_browser_mid_run(chromium, tmp_path):
    num_envs, steps = 4, 400
    fallback_action = 0.25

    def fallback(obs):
        return torch.full((obs.shape[0], 8), fallback_action)

    policy = GaitPolicy()

    def paced(obs):
        time.sleep(0.03)
        return policy(obs)

    rr = RolloutRecorder(WalkerEnv(num_envs, seed=3, max_episode_steps=70), max_steps=steps, progress=False,
                         flush_interval_s=0.2)
    result = {}
    run = threading.Thread(target=lambda: result.setdefault("path", rr.run(paced, tmp_path, filename="toggled.npz",
                                                                             serve=0, fallback=fallback)))
    run.start()
    try:
        wait_for(lambda: rr.server is not None, 60, "the served replay to start (with the first step)")
        rr.control.pause()  # held until the browser is there (the machine may be slow)
        url = rr.server.wait_url(90)
        assert url, "\n".join(rr.server.lines)
        page = open_page(chromium, url)
        wait_for(lambda: "simulation paused" in page.inner_text("body"), 10, "the paused line")

        def status() -> tuple[str, str, int]:
            m = re.search(r"Policy (on|off) for env (\d+) .* simulation (\w+) \(step (\d+)\)", page.inner_text("body"))
            assert m, "no policy status line"
            return m.group(1), m.group(3), int(m.group(4))

        page.get_by_role("button", name="Resume (K)").click()
        held = status()[2]
        wait_for(lambda: status()[2] >= held + 20, 30, "the simulation to run")
        page.get_by_role("button", name="Pause (K)").click()
        wait_for(lambda: status()[1] == "paused", 10, "the simulation to pause")
        time.sleep(0.5)
        k0 = status()[2]
        assert 0 < k0 < steps - 20
        box = labelled_input(page, "Env")
        box.fill("2")
        box.press("Enter")
        wait_for(lambda: readout(page)[1] == 2, 10, "env 2")
        page.evaluate("document.activeElement.blur()")  # keys go to the page, not the box
        page.keyboard.press("l")  # the original tool's key: policy off for the selected env
        wait_for(lambda: status()[0] == "off", 10, "the policy off for env 2")
        for i in range(5):
            page.get_by_role("button", name="Step (J)").click()
            wait_for(lambda i=i: status()[2] == k0 + i + 1, 10, f"single step {i + 1}")
        page.keyboard.press("l")
        wait_for(lambda: status()[0] == "on", 10, "the policy back on")
        page.get_by_role("button", name="Toggle all envs (Shift+L)").click()  # every env off for 3 steps
        wait_for(lambda: "on for 0 of 4 envs" in page.inner_text("body"), 10, "every env off")
        for i in range(3):
            page.keyboard.press("j")
            wait_for(lambda i=i: status()[2] == k0 + 6 + i, 10, f"single step {6 + i}")
        page.keyboard.press("Shift+L")
        wait_for(lambda: "on for 4 of 4 envs" in page.inner_text("body"), 10, "every env back on")
        page.get_by_role("button", name="Resume (K)").click()
        run.join(timeout=120)
        assert not run.is_alive()
        # the replay shows it on the timeline: marks where the policy was switched off
        wait_for(lambda: "Recording finished" in page.inner_text("body"), 30, "the finished line")
        assert page.get_by_text("policy off").count() >= 1
        page.close()
    finally:
        run.join(timeout=120)
        if rr.server is not None:
            rr.server.close()

    off_env2 = list(range(k0, k0 + 5))  # rows of the 5 single steps with env 2 off
    off_all = list(range(k0 + 5, k0 + 8))  # the 3 with every env off
    with rollrec.load(result["path"]) as r:
        acted = np.asarray(r["policy_acted"])
        act = np.asarray(r["act"])
        obs = torch.as_tensor(np.array(r["obs"]))
        fields = {k: np.asarray(r[k]) for k in r.step_keys if k != "policy_acted"}
    want = np.ones((steps, num_envs), bool)
    want[off_env2, 2] = False
    want[off_all, :] = False
    np.testing.assert_array_equal(acted, want)
    np.testing.assert_array_equal(act[~want], fallback_action)  # the fallback's actions
    with torch.no_grad():
        chosen = policy(obs.reshape(-1, obs.shape[-1])).reshape(steps, num_envs, 8).numpy()
    np.testing.assert_allclose(act[want], chosen[want], atol=1e-6)  # the policy's everywhere else
    # The rest of the run is unchanged: an unrecorded-control twin of the same seed and policy.
    twin_path = RolloutRecorder(WalkerEnv(num_envs, seed=3, max_episode_steps=70), max_steps=steps,
                                progress=False).run(policy, tmp_path, filename="twin.npz")
    with rollrec.load(twin_path) as twin:
        for k, v in fields.items():
            t = np.asarray(twin[k])
            np.testing.assert_array_equal(v[:k0], t[:k0], err_msg=k)  # up to the first switch
            for e in (0, 1, 3):  # the envs left on until every env was switched off
                np.testing.assert_array_equal(v[: k0 + 5, e], t[: k0 + 5, e], err_msg=f"{k} env {e}")
        assert not np.allclose(fields["base_pos"][k0 + 5, 2], np.asarray(twin["base_pos"][k0 + 5, 2]))  # env 2 moved otherwise
