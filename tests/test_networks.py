"""Tests for mlp_roadmap.networks: metrics, splits, the mlp builder, ArrayLoader and the fit loop."""

import numpy as np
import pytest
import torch
from torch import nn

from mlp_roadmap.networks import (
    ACTIVATIONS,
    ArrayLoader,
    History,
    fit,
    mae,
    mlp,
    plot_history,
    r2,
    rmse,
    split_indices,
)

# ----------------------------------------------------------------------------- metrics


def test_metrics_values_and_types():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = y + np.array([0.5, -0.5, 0.5, -0.5])
    assert rmse(p, y) == pytest.approx(0.5)
    assert mae(p, y) == pytest.approx(0.5)
    assert r2(p, y) == pytest.approx(1 - 0.25 / np.var(y))
    assert r2(y, y) == 1.0
    assert r2(np.full(4, y.mean()), y) == pytest.approx(0.0)
    for f in (rmse, mae, r2):  # numpy, torch (with grad) and float32 give the same float
        t = torch.tensor(p, requires_grad=True)
        assert isinstance(f(t, torch.from_numpy(y)), float)
        assert f(t, torch.from_numpy(y)) == pytest.approx(f(p, y), rel=1e-12)
        assert f(torch.tensor(p, dtype=torch.float32), y) == pytest.approx(f(p, y), rel=1e-6)


def test_metrics_match_sklearn_definitions():
    rng = np.random.default_rng(0)
    y, p = rng.normal(size=100), rng.normal(size=100)
    assert rmse(p, y) == pytest.approx(np.sqrt(np.mean((p - y) ** 2)))
    assert r2(p, y) == pytest.approx(1 - np.sum((p - y) ** 2) / np.sum((y - y.mean()) ** 2))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: rmse(torch.zeros(5, 1), torch.zeros(5)), "shape mismatch"),
        (lambda: mae(np.zeros(0), np.zeros(0)), "empty"),
        (lambda: r2(np.array([1.0, np.nan]), np.array([1.0, 2.0])), "non-finite"),
        (lambda: rmse(torch.tensor([1.0, float("inf")]), torch.tensor([1.0, 2.0])), "non-finite"),
        (lambda: r2(np.ones(3), np.ones(3)), "constant"),
    ],
)
def test_metrics_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ----------------------------------------------------------------------------- splits


def test_split_indices_partition_and_reproducible():
    parts = split_indices(101, (0.8, 0.1, 0.1), seed=7)
    assert [len(p) for p in parts] == [81, 10, 10]
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(101))
    for a, b in zip(parts, split_indices(101, (0.8, 0.1, 0.1), seed=7)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(parts[0], split_indices(101, seed=8)[0])
    assert all(np.all(np.diff(p) > 0) for p in parts)


def test_split_indices_two_parts_and_zero_fraction():
    tr, va = split_indices(10, (0.5, 0.5))
    assert len(tr) == len(va) == 5
    tr, va, te = split_indices(10, (0.9, 0.1, 0.0))
    assert len(te) == 0 and len(tr) + len(va) == 10


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n=10, fractions=(0.8, 0.1)), "sum to 1"),
        (dict(n=10, fractions=(1.2, -0.2)), "non-negative"),
        (dict(n=0), "positive integer"),
        (dict(n=3, fractions=(0.8, 0.1, 0.1)), "too small"),
        (dict(n=10, fractions=()), "sum to 1"),
    ],
)
def test_split_indices_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        split_indices(**kwargs)


# ----------------------------------------------------------------------------- mlp


def test_mlp_structure_dtype_and_activation():
    net = mlp(3, [16, 8], n_out=2, activation="tanh", dtype=torch.float64)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(3, 16), (16, 8), (8, 2)]
    assert sum(isinstance(m, nn.Tanh) for m in net) == 2
    assert not isinstance(net[-1], nn.Tanh)  # linear output
    assert all(p.dtype == torch.float64 for p in net.parameters())
    assert net(torch.zeros(5, 3, dtype=torch.float64)).shape == (5, 2)
    assert mlp(2, []).__len__() == 1  # no hidden layer: a linear model
    for name in ACTIVATIONS:
        assert mlp(1, [4], activation=name)(torch.zeros(2, 1)).shape == (2, 1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_in=2, hidden=[8], activation="swish"), "unknown activation"),
        (dict(n_in=0, hidden=[8]), "positive integers"),
        (dict(n_in=2, hidden=[8, 0]), "positive integers"),
        (dict(n_in=2, hidden=[8], n_out=0), "positive integers"),
    ],
)
def test_mlp_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mlp(**kwargs)


def test_mlp_backprop_matches_finite_differences():
    torch.manual_seed(0)
    net = mlp(2, [5, 5], activation="silu", dtype=torch.float64)
    x = torch.randn(4, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda inp: net(inp).sum(), (x.requires_grad_(),))


# ----------------------------------------------------------------------------- ArrayLoader


def test_array_loader_batches_and_shuffle():
    x, y = torch.arange(10.0)[:, None], torch.arange(10.0)
    dl = ArrayLoader(x, y, batch_size=3)
    assert len(dl) == 4
    batches = list(dl)
    assert [len(b[0]) for b in batches] == [3, 3, 3, 1]
    torch.testing.assert_close(torch.cat([b[1] for b in batches]), y)  # no shuffle: in order
    sh = ArrayLoader(x, y, batch_size=4, shuffle=True, seed=1)
    e1, e2 = torch.cat([b for _, b in sh]), torch.cat([b for _, b in sh])
    assert not torch.equal(e1, e2)  # a new order every epoch
    torch.testing.assert_close(torch.sort(e1).values, y)
    again = ArrayLoader(x, y, batch_size=4, shuffle=True, seed=1)
    torch.testing.assert_close(torch.cat([b for _, b in again]), e1)  # reproducible
    xb, yb = next(iter(sh))
    torch.testing.assert_close(xb[:, 0], yb)  # pairs stay together


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((torch.zeros(5), torch.zeros(4)), {}, "shape mismatch"),
        ((torch.zeros(0), torch.zeros(0)), {}, "empty"),
        ((torch.zeros(5), torch.zeros(5)), dict(batch_size=0), "batch_size"),
    ],
)
def test_array_loader_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ArrayLoader(*args, **kwargs)


# ----------------------------------------------------------------------------- fit


def _toy(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, generator=g, dtype=torch.float64) * 4 - 2
    return x, torch.sin(2 * x) + 0.05 * torch.randn(n, 1, generator=g, dtype=torch.float64)


def test_fit_reduces_loss_and_records_history():
    x, y = _toy()
    torch.manual_seed(0)
    net = mlp(1, [16, 16], dtype=torch.float64)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    h = fit(
        net,
        nn.MSELoss(),
        opt,
        ArrayLoader(x[:48], y[:48], 24, shuffle=True),
        ArrayLoader(x[48:], y[48:]),
        40,
        progress=False,
    )
    assert isinstance(h, History)
    assert len(h.train_loss) == len(h.valid_loss) == len(h.lr) == 40
    assert h.train_loss[-1] < 0.2 * h.train_loss[0]
    assert (
        h.best_valid_loss == min(h.valid_loss) and h.valid_loss[h.best_epoch] == h.best_valid_loss
    )
    assert not h.stopped_early and net.training  # training mode restored


def test_fit_epoch_loss_is_dataset_mean():
    # with a zero learning rate the "training" loss is the exact batch-size-weighted dataset mean
    x, y = _toy(10)
    net = mlp(1, [4], dtype=torch.float64)
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    h = fit(
        net,
        nn.MSELoss(),
        opt,
        ArrayLoader(x, y, batch_size=3),
        ArrayLoader(x, y, batch_size=4),
        1,
        progress=False,
    )
    full = nn.functional.mse_loss(net(x), y).item()
    assert h.train_loss[0] == pytest.approx(full, rel=1e-12)
    assert h.valid_loss[0] == pytest.approx(full, rel=1e-12)


def test_fit_early_stopping_restores_best_weights():
    x, y = _toy(30, seed=1)
    torch.manual_seed(0)
    net = mlp(1, [64, 64], dtype=torch.float64)
    opt = torch.optim.Adam(net.parameters(), lr=3e-2)  # large steps: a noisy validation curve
    xv, yv = x[20:], y[20:]
    h = fit(
        net,
        nn.MSELoss(),
        opt,
        ArrayLoader(x[:20], y[:20]),
        ArrayLoader(xv, yv),
        300,
        patience=10,
        progress=False,
    )
    assert h.stopped_early
    assert len(h.valid_loss) == h.best_epoch + 11
    now = nn.functional.mse_loss(net(xv), yv).item()
    assert now == pytest.approx(h.best_valid_loss, rel=1e-12)
    assert now <= min(h.valid_loss)


def test_fit_without_validation_and_with_schedulers():
    x, y = _toy(20)
    net = mlp(1, [8], dtype=torch.float64)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    h = fit(net, nn.MSELoss(), opt, ArrayLoader(x, y), None, 5, scheduler=sched, progress=False)
    assert h.valid_loss == [] and h.best_valid_loss is None and h.best_epoch == 4
    assert h.lr == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    flat = lambda p, t: 0 * p.sum() + 1.0  # noqa: E731  a loss that never improves
    h = fit(
        net, flat, opt, ArrayLoader(x, y), ArrayLoader(x, y), 4, scheduler=plateau, progress=False
    )
    assert h.lr == pytest.approx([0.1, 0.1, 0.05, 0.025])  # first call sets the reference


def test_fit_with_torch_dataloader_and_progress(capsys):
    x, y = _toy(32)
    dl = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=8, shuffle=True
    )
    net = mlp(1, [8], dtype=torch.float64)
    h = fit(
        net, nn.MSELoss(), torch.optim.Adam(net.parameters(), lr=1e-2), dl, dl, 3, progress=True
    )
    assert len(h.train_loss) == 3
    assert "fit" in capsys.readouterr().err  # the tqdm bar


def test_fit_bad_input():
    x, y = _toy(10)
    net = mlp(1, [4], dtype=torch.float64)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    dl = ArrayLoader(x, y)
    x_nan = x.clone()
    x_nan[3] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        fit(net, nn.MSELoss(), opt, ArrayLoader(x_nan, y), None, 1, progress=False)
    y_inf = y.clone()
    y_inf[0] = float("inf")
    with pytest.raises(ValueError, match="non-finite"):
        fit(net, nn.MSELoss(), opt, dl, ArrayLoader(x, y_inf), 1, progress=False)
    with pytest.raises(ValueError, match="no batches"):
        fit(net, nn.MSELoss(), opt, [], None, 1, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        fit(net, nn.MSELoss(), opt, dl, None, 0, progress=False)
    with pytest.raises(ValueError, match="valid_dl"):
        fit(net, nn.MSELoss(), opt, dl, None, 3, patience=2, progress=False)
    with pytest.raises(ValueError, match="patience"):
        fit(net, nn.MSELoss(), opt, dl, dl, 3, patience=0, progress=False)
    with pytest.raises(ValueError, match="diverged"):
        fit(
            net,
            nn.MSELoss(),
            torch.optim.SGD(net.parameters(), lr=1e30),
            dl,
            None,
            50,
            progress=False,
        )


def test_plot_history_returns_figure():
    import matplotlib

    matplotlib.use("Agg")
    h = History(train_loss=[1.0, 0.5, 0.2], valid_loss=[1.1, 0.6, 0.7], lr=[0.1] * 3, best_epoch=1)
    fig = plot_history(h, label="run")
    assert fig.axes[0].get_yscale() == "log"
    assert len(fig.axes[0].lines) == 3
