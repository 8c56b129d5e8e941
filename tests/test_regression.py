"""Tests for mlp_roadmap.regression: NumPy losses, gradients, gradient descent, ridge and feature bases."""

from functools import partial

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mlp_roadmap.regression import (
    LOSSES,
    gaussian_features,
    gradient_descent,
    huber,
    huber_grad,
    inverse_power_features,
    linear_grad,
    lstsq_fit,
    mae,
    mae_grad,
    mse,
    mse_grad,
    ridge_fit,
)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    w_true = np.array([1.0, -2.0, 0.5])
    return X, X @ w_true + 0.1 * rng.normal(size=40), w_true


def test_losses_match_torch():
    rng = np.random.default_rng(1)
    p, t = rng.normal(size=50), rng.normal(size=50)
    tp, tt = torch.from_numpy(p), torch.from_numpy(t)
    assert mse(p, t) == pytest.approx(torch.nn.functional.mse_loss(tp, tt).item(), rel=1e-12)
    assert mae(p, t) == pytest.approx(torch.nn.functional.l1_loss(tp, tt).item(), rel=1e-12)
    for delta in (0.1, 1.0, 5.0):
        ref = torch.nn.functional.huber_loss(tp, tt, delta=delta).item()
        assert huber(p, t, delta=delta) == pytest.approx(ref, rel=1e-12)


def test_loss_gradients_match_autograd():
    rng = np.random.default_rng(2)
    p, t = rng.normal(size=30), rng.normal(size=30)
    refs = {
        "mse": torch.nn.functional.mse_loss,
        "mae": torch.nn.functional.l1_loss,
        "huber": partial(torch.nn.functional.huber_loss, delta=0.5),
    }
    ours = {"mse": mse_grad, "mae": mae_grad, "huber": partial(huber_grad, delta=0.5)}
    for name, ref in refs.items():
        tp = torch.tensor(p, requires_grad=True)
        ref(tp, torch.from_numpy(t)).backward()
        np.testing.assert_allclose(ours[name](p, t), tp.grad.numpy(), atol=1e-14)


def test_huber_limits():
    r = np.array([0.01, -0.02, 0.03])
    z = np.zeros(3)
    assert huber(r, z, delta=1.0) == pytest.approx(0.5 * mse(r, z))  # quadratic regime
    big = np.array([10.0, -20.0])
    assert huber(big, np.zeros(2), delta=0.1) == pytest.approx(0.1 * (mae(big, np.zeros(2)) - 0.05))


def test_linear_grad_finite_differences(data):
    X, y, _ = data
    w = np.array([0.3, 0.1, -0.2])
    h = 1e-6
    for name, (f, _) in LOSSES.items():
        g = linear_grad(w, X, y, loss=name, l2=0.05)
        obj = lambda w, f=f: f(X @ w, y) + 0.05 * w @ w  # noqa: E731
        fd = np.array([(obj(w + h * e) - obj(w - h * e)) / (2 * h) for e in np.eye(3)])
        np.testing.assert_allclose(g, fd, atol=1e-7)


def test_lstsq_matches_normal_equations(data):
    X, y, w_true = data
    w = lstsq_fit(X, y)
    np.testing.assert_allclose(w, np.linalg.solve(X.T @ X, X.T @ y), rtol=1e-10)
    assert np.abs(w - w_true).max() < 0.1


def test_gradient_descent_converges_to_lstsq(data):
    X, y, _ = data
    w_ls = lstsq_fit(X, y)
    lam_max = np.linalg.eigvalsh(2 * X.T @ X / len(X)).max()
    plain = gradient_descent(X, y, lr=1 / lam_max, epochs=2000)
    mom = gradient_descent(X, y, lr=1 / lam_max, epochs=500, momentum=0.8)
    np.testing.assert_allclose(plain.w, w_ls, atol=1e-10)
    np.testing.assert_allclose(mom.w, w_ls, atol=1e-10)
    assert np.all(np.diff(plain.losses) <= 1e-15)  # full-batch GD below 2/L never goes uphill
    assert len(plain.losses) == 2001


def test_sgd_near_optimum_and_reproducible(data):
    X, y, _ = data
    best = mse(X @ lstsq_fit(X, y), y)
    a = gradient_descent(X, y, lr=0.05, epochs=100, batch_size=8, seed=3)
    b = gradient_descent(X, y, lr=0.05, epochs=100, batch_size=8, seed=3)
    np.testing.assert_array_equal(a.w, b.w)
    assert a.losses[-1] < 1.1 * best


def test_gradient_descent_diverges_above_two_over_L(data):
    X, y, _ = data
    lam_max = np.linalg.eigvalsh(2 * X.T @ X / len(X)).max()
    res = gradient_descent(X, y, lr=2.2 / lam_max, epochs=5000)
    assert not np.isfinite(res.losses[-1]) or res.losses[-1] > 1e6 * res.losses[0]


def test_ridge_normal_equations_and_gd(data):
    X, y, _ = data
    n, p = X.shape
    for lam in (0.0, 1e-3, 0.1, 10.0):
        w = ridge_fit(X, y, lam)
        np.testing.assert_allclose(
            w, np.linalg.solve(X.T @ X + n * lam * np.eye(p), X.T @ y), rtol=1e-9, atol=1e-12
        )
    lam = 0.1
    lam_max = np.linalg.eigvalsh(2 * X.T @ X / n).max() + 2 * lam
    gd = gradient_descent(X, y, lr=1 / lam_max, epochs=2000, l2=lam)
    np.testing.assert_allclose(gd.w, ridge_fit(X, y, lam), atol=1e-10)


@settings(max_examples=20, deadline=None)
@given(st.floats(1e-6, 1e3), st.floats(1.5, 100.0))
def test_ridge_shrinks(lam, factor):
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(15, 4)), rng.normal(size=15)
    assert (
        np.linalg.norm(ridge_fit(X, y, lam * factor))
        <= np.linalg.norm(ridge_fit(X, y, lam)) + 1e-12
    )


def test_feature_bases():
    r = np.array([3.0, 3.4, 5.0])
    X = inverse_power_features(r, powers=(6, 12), r0=3.4)
    assert X.shape == (3, 2)
    np.testing.assert_allclose(X[1], [1.0, 1.0])
    np.testing.assert_allclose(X[:, 1], X[:, 0] ** 2)
    G = gaussian_features(r, centers=[3.0, 4.0], width=0.5)
    assert G.shape == (3, 2)
    assert G[0, 0] == 1.0
    assert G[2, 1] == pytest.approx(np.exp(-0.5 * (1.0 / 0.5) ** 2))


def test_lj_curve_recovered_exactly():
    eps, sigma = 0.0104, 3.4
    r = np.linspace(3.2, 8.0, 30)
    e = 4 * eps * ((sigma / r) ** 12 - (sigma / r) ** 6)
    w = lstsq_fit(inverse_power_features(r, (6, 12), r0=sigma), e)
    np.testing.assert_allclose(w, [-4 * eps, 4 * eps], rtol=1e-9)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: mse(np.zeros((5, 1)), np.zeros(5)), "shape mismatch"),
        (lambda: mae([], []), "empty"),
        (lambda: huber([np.nan], [0.0]), "non-finite"),
        (lambda: mse([np.inf], [0.0]), "non-finite"),
        (lambda: huber([1.0], [0.0], delta=0.0), "delta"),
        (lambda: lstsq_fit(np.zeros((5, 2)), np.zeros(4)), "shape mismatch"),
        (lambda: lstsq_fit(np.zeros(5), np.zeros(5)), "2D"),
        (lambda: lstsq_fit(np.zeros((0, 2)), np.zeros(0)), "empty"),
        (lambda: ridge_fit(np.ones((3, 2)), np.array([1.0, np.nan, 2.0]), 0.1), "non-finite"),
        (lambda: ridge_fit(np.ones((3, 2)), np.ones(3), -1.0), "lam"),
        (lambda: gradient_descent(np.ones((3, 2)), np.ones(3), lr=-0.1), "lr"),
        (lambda: gradient_descent(np.ones((3, 2)), np.ones(3), lr=0.1, momentum=1.0), "momentum"),
        (lambda: gradient_descent(np.ones((3, 2)), np.ones(3), lr=0.1, batch_size=0), "batch_size"),
        (lambda: gradient_descent(np.ones((3, 2)), np.ones(3), lr=0.1, w0=np.zeros(3)), "w0"),
        (lambda: gradient_descent(np.ones((3, 2)), np.ones(3), lr=0.1, loss="l3"), "unknown loss"),
        (lambda: inverse_power_features([1.0, 0.0]), "positive"),
        (lambda: inverse_power_features(np.ones((2, 2))), "1D"),
        (lambda: gaussian_features([1.0], [1.0], width=0.0), "width"),
        (lambda: gaussian_features([1.0, np.nan], [1.0], width=1.0), "non-finite"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
