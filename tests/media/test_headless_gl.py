"""Gymnasium's MuJoCo envs render on a machine without a display: EGL is chosen before the first
render when nothing else chose, and otherwise the error says what to set (it said only
"an OpenGL platform library has not been loaded", and some MuJoCo builds then abort)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from rollrec.media.headless_gl import HINT, use_egl_if_headless

COLLECT_ANT = textwrap.dedent(
    """
    import sys
    if sys.argv[1] == "pyopengl-first":
        import OpenGL.GL  # PyOpenGL loaded for its default platform: EGL would fail, so nothing is set
    import gymnasium as gym
    from rollrec.media.collect import RenderFailedError, collect_frames_from_env
    env = gym.make("Ant-v5", render_mode="rgb_array", width=64, height=48)
    try:
        frames = collect_frames_from_env(env, lambda obs: env.action_space.sample(), max_steps=3)
        print("frames", len(frames), frames[0].shape, float(frames[0].std()))
    except RenderFailedError as exc:
        print("error", exc)
    env.close()
    """
)


def _collect_ant_headless(mode: str) -> str:
    pytest.importorskip("mujoco", reason="gymnasium[mujoco] is installed by scripts/setup.sh --test")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MUJOCO_GL",
                                                             "PYOPENGL_PLATFORM")}
    out = subprocess.run([sys.executable, "-c", COLLECT_ANT, mode], env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]  # no abort, no traceback
    return out.stdout


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="headless means Linux without a display")
def test_gymnasium_ant_renders_without_a_display_or_mujoco_gl():
    out = _collect_ant_headless("plain")
    assert out.startswith("frames 3 (48, 64, 3) "), out
    assert float(out.split()[-1]) > 1.0  # a picture, not a blank frame


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="headless means Linux without a display")
def test_when_egl_cannot_be_chosen_the_error_says_what_to_set():
    out = _collect_ant_headless("pyopengl-first")
    assert out.startswith("error env.render() failed at step 0: "), out
    assert "MUJOCO_GL=egl" in out


class _Renderer:
    """Stands in for gymnasium.envs.mujoco.mujoco_rendering.MujocoRenderer: ``_viewers`` holds
    the viewer made by the first render (``MujocoRenderer._get_viewer``)."""

    def __init__(self, rendered: bool = False):
        self._viewers = {"rgb_array": object()} if rendered else {}


class _MujocoEnv:
    """Stands in for gymnasium.envs.mujoco.mujoco_env.MujocoEnv: its ``mujoco_renderer``."""

    def __init__(self, rendered: bool = False):
        self.mujoco_renderer = _Renderer(rendered)
        self.unwrapped = self


@pytest.mark.parametrize(
    "environ, env, sets",
    [
        ({}, _MujocoEnv(), True),
        ({"DISPLAY": ":0"}, _MujocoEnv(), False),  # glfw works there
        ({"MUJOCO_GL": "osmesa"}, _MujocoEnv(), False),  # the user chose
        ({}, _MujocoEnv(rendered=True), False),  # its platform is chosen already
        ({}, object(), False),  # not a MuJoCo env
    ],
)
def test_egl_is_set_only_when_nothing_chose(monkeypatch, environ, env, sets):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "MUJOCO_GL", "PYOPENGL_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delitem(sys.modules, "OpenGL", raising=False)
    assert use_egl_if_headless(env) is sets
    assert os.environ.get("MUJOCO_GL") == ("egl" if sets else environ.get("MUJOCO_GL"))
    assert "MUJOCO_GL=egl" in HINT
