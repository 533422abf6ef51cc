"""The one quaternion module: products, rotations and matrices agree with each other and with
rotations written out by hand."""

import numpy as np

from rollrec.geometry.quaternion import quat_conj, quat_mul, quat_rotate, quat_to_matrix, rpy_to_quat


def _random_unit(rng, n):
    q = rng.standard_normal((n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def test_rotation_by_a_quaternion_is_its_matrix():
    rng = np.random.default_rng(0)
    for q, v in zip(_random_unit(rng, 20), rng.standard_normal((20, 3))):
        np.testing.assert_allclose(quat_rotate(q, v), quat_to_matrix(q) @ v, atol=1e-12)


def test_product_composes_rotations_and_conjugate_inverts():
    rng = np.random.default_rng(1)
    a, b = _random_unit(rng, 2)
    np.testing.assert_allclose(quat_to_matrix(quat_mul(a, b)), quat_to_matrix(a) @ quat_to_matrix(b), atol=1e-12)
    np.testing.assert_allclose(quat_mul(a, quat_conj(a)), [1.0, 0.0, 0.0, 0.0], atol=1e-12)


def test_matrix_of_a_quarter_turn_about_z_and_of_a_batch():
    q = np.array([np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)])
    np.testing.assert_allclose(quat_to_matrix(q), [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    batch = np.stack([q, 2 * q, [1.0, 0, 0, 0]])[None]  # [1, 3, 4], not normalised
    out = quat_to_matrix(batch)
    assert out.shape == (1, 3, 3, 3)
    np.testing.assert_allclose(out[0, 1], out[0, 0], atol=1e-12)
    np.testing.assert_allclose(out[0, 2], np.eye(3), atol=1e-12)


def test_rpy_is_yaw_after_pitch_after_roll():
    r, p, y = 0.3, -0.7, 1.1
    rx = np.array([[1, 0, 0], [0, np.cos(r), -np.sin(r)], [0, np.sin(r), np.cos(r)]])
    ry = np.array([[np.cos(p), 0, np.sin(p)], [0, 1, 0], [-np.sin(p), 0, np.cos(p)]])
    rz = np.array([[np.cos(y), -np.sin(y), 0], [np.sin(y), np.cos(y), 0], [0, 0, 1]])
    np.testing.assert_allclose(quat_to_matrix(rpy_to_quat(np.array([r, p, y]))), rz @ ry @ rx, atol=1e-12)
