"""`MuJoCoCamera` against MuJoCo itself: the frames in the file are MuJoCo's own renders of the state
each obs describes, compared with an unrecorded twin run (same seed, same actions) rendered by
``mujoco.Renderer`` directly. Runs in a process of its own: mujoco picks its GL backend when it is
imported (``MUJOCO_GL=egl`` here: Mesa's llvmpipe on a CPU machine), and skips where none renders."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("gymnasium")
pytest.importorskip("mujoco", reason="gymnasium[mujoco] is installed by scripts/setup.sh --test")
pytest.importorskip("av")

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from rollrec.adapters.mujoco_camera import rendering_unavailable
    why = rendering_unavailable()
    if why:
        print("SKIP", why); sys.exit(0)
    import gymnasium as gym, mujoco, rollrec
    from rollrec.adapters.mujoco_camera import MuJoCoCamera
    out = sys.argv[1]
    actions = np.random.default_rng(0).uniform(-1, 1, (6, 2, 8)).astype(np.float32)

    def make():
        env = gym.make_vec("Ant-v5", num_envs=2, vectorization_mode="sync")
        env.reset(seed=3)
        return env

    env = make()
    subs = [e.unwrapped for e in env.envs]
    camera = MuJoCoCamera(subs[0].model, [e.data for e in subs], size=(20, 28))
    it = iter(actions)
    path = rollrec.RolloutRecorder(env, max_steps=6, progress=False, cameras=camera, image_quality="lossless").run(
        lambda obs: next(it), out, filename="ant.npz")
    # The twin: the same seed and actions, rendered by mujoco.Renderer directly, no rollrec involved.
    twin = make()
    twin.reset()  # as RolloutRecorder's run() does (GymVectorAdapter.reset: env.reset(), the RNG continuing)
    tsubs = [e.unwrapped for e in twin.envs]
    model = tsubs[0].model
    model.vis.quality.offsamples = 0
    renderer = mujoco.Renderer(model, 20, 28)
    want = []
    for a in actions:
        frames = []
        for e in tsubs:
            mujoco.mj_kinematics(model, e.data); mujoco.mj_camlight(model, e.data)
            renderer.update_scene(e.data, camera=0)
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
            frames.append(renderer.render().copy())
        want.append(frames)
        twin.step(a)
    renderer.close()
    camera.close()
    with rollrec.load(path) as r:
        assert list(r.cameras) == ["track"], r.cameras
        for env_i in range(2):
            got = r.images("track", env_i)
            assert len(got) == 6
            for t in range(6):
                np.testing.assert_array_equal(got[t], want[t][env_i])
        moved = np.abs(r.images("track", 0)[5].astype(int) - r.images("track", 0)[0].astype(int)).mean()
    print("OK", moved)
    """
)


def test_recorded_frames_are_mujocos_renders_of_each_state(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "DISPLAY")}
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    if out.stdout.startswith("SKIP"):
        pytest.skip(out.stdout[5:].strip())
    assert out.stdout.startswith("OK")
