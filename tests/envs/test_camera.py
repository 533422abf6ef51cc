"""`WalkerCamera`: the rendered chase camera of the demo shows each walker where it is, with depth in millimetres."""

from __future__ import annotations

import numpy as np
import torch

from rollrec.envs import GaitPolicy, WalkerEnv
from rollrec.envs.camera import _EYE, _LOOK, WalkerCamera


def stepped(n: int = 8, steps: int = 20) -> WalkerEnv:
    env = WalkerEnv(n, seed=1)
    obs, policy = env.reset(), GaitPolicy()
    with torch.no_grad():
        for _ in range(steps):
            obs = env.step(policy(obs))[0]
    return env


def project(env: WalkerEnv, envs, size: tuple[int, int], fov: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    """Where each env's base centre lands in the image ``(rows, cols)``, and its depth along the camera axis
    (metres), from the camera's definition (eye and target in the base's heading frame), independently of
    the renderer's rays."""
    h, w = size
    base = env.base_pos[envs].numpy().astype(np.float64)
    yaw = env.rpy[envs, 2].numpy().astype(np.float64)
    c, s = np.cos(yaw), np.sin(yaw)

    def heading(v):
        return np.stack([c * v[0] - s * v[1], s * v[0] + c * v[1], np.full_like(c, v[2])], -1)

    eye = base + heading(_EYE)
    fwd = base + heading(_LOOK) - eye
    fwd /= np.linalg.norm(fwd, axis=1, keepdims=True)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    up = np.cross(right, fwd)
    rel = base - eye
    z = (rel * fwd).sum(1)
    tan = np.tan(np.radians(fov) / 2)
    x = (rel * right).sum(1) / z / (tan * w / h)
    y = (rel * up).sum(1) / z / tan
    return np.stack([(1 - y) / 2 * h, (x + 1) / 2 * w], 1), z


def test_each_walker_is_where_the_camera_puts_it_with_its_depth():
    env = stepped()
    envs = [0, 3, 6]
    rgb, depth = WalkerCamera(env, envs=envs, size=(48, 64)).render()
    assert rgb.dtype == torch.uint8 and rgb.shape == (3, 48, 64, 3) and depth.shape == (3, 48, 64)
    pixels, z = project(env, envs, (48, 64))
    rgb, depth = rgb.numpy(), depth.numpy().astype(np.int64)
    for k in range(3):
        r, c = (int(v) for v in pixels[k])
        patch = rgb[k, r - 1 : r + 2, c - 1 : c + 2].reshape(-1, 3).astype(int)
        assert ((patch[:, 0] > patch[:, 1] + 40) & (patch[:, 1] > patch[:, 2])).any(), patch  # the orange base
        near = depth[k, r - 1 : r + 2, c - 1 : c + 2]
        assert np.abs(near / 1000 - z[k]).min() < 0.35  # its surface, within the box's size of its centre


def test_rendering_some_envs_gives_their_rows_of_all():
    env = stepped(6, 5)
    every_rgb, every_depth = WalkerCamera(env, size=(16, 20)).render()
    some_rgb, some_depth = WalkerCamera(env, envs=[1, 4], size=(16, 20)).render()
    torch.testing.assert_close(some_rgb, every_rgb[[1, 4]], atol=1, rtol=0)  # float order may move a rounding
    torch.testing.assert_close(some_depth.int(), every_depth.int()[[1, 4]], atol=1, rtol=0)


def test_sky_and_far_ground_have_no_depth():
    env = stepped(2, 3)
    rgb, depth = WalkerCamera(env, size=(40, 40), max_depth=3.0).render()
    depth = depth.numpy().astype(np.int64)
    assert (depth[:, 0] == 0).all()  # the top row looks at the sky
    assert depth.max() <= 3000 and (depth[:, -1] > 0).all()  # the bottom row sees near ground
    sky = rgb.numpy()[:, 0].reshape(-1, 3).astype(int)
    assert (sky[:, 2] > sky[:, 0]).all()  # blue


def test_images_is_what_record_takes():
    env = stepped(3, 1)
    images = WalkerCamera(env, envs=[2], size=(8, 8)).images()
    assert set(images) == {"chase", "depth"} and images["chase"].shape == (1, 8, 8, 3)
