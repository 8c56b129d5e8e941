"""BP training on cached descriptors (`cache_features`): same physics as autograd through the descriptor."""

import ase.build
import numpy as np
import pytest
import torch
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from torch import nn

from mlp_roadmap.bpnn import BPModel
from mlp_roadmap.data import AtomsDataset, collate
from mlp_roadmap.md import compute_properties
from mlp_roadmap.training import (
    FeatureCache,
    TrainConfig,
    build_model,
    cached_properties,
    prepare_model,
    train,
)


def labelled(atoms):
    atoms.calc = EMT()
    e, f, s = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f, stress=s)
    return atoms


def alloy(n, seed):
    "Periodic Cu-Ni-O cells of two sizes (three elements, uneven neighbour counts)"
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        at = ase.build.bulk("Cu", "fcc", a=3.6, cubic=True).repeat((1, 1, 1 + k % 2))
        at.numbers[rng.choice(len(at), 2, replace=False)] = [28, 8]
        at.set_cell(at.cell * rng.uniform(0.97, 1.03, (3, 1)), scale_atoms=True)
        at.rattle(0.08, seed=int(rng.integers(1 << 30)))
        out.append(labelled(at))
    return out


@pytest.fixture(scope="module")
def data():
    return alloy(10, 0), alloy(4, 1)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cached_equals_autograd(data, dtype):
    tr, _ = data
    model = build_model("bp", [8, 28, 29], 4.0, n_radial=5, n_angular=2, hidden=[8])
    model = prepare_model(model.to(dtype), tr)
    ds = AtomsDataset(tr, 4.0, dtype=dtype)
    fc = FeatureCache(model, ds)
    idx = [3, 0, 7]
    ref = compute_properties(model, collate([ds[k] for k in idx]), stress=True)
    got = cached_properties(model, fc.batch(idx), stress=True)
    eps = 1e-10 if dtype == torch.float64 else 1e-4
    for name in ("energy", "forces", "stress", "energies"):
        a, b = getattr(ref, name).detach(), getattr(got, name).detach()
        assert torch.allclose(a, b, atol=eps * (1 + float(a.abs().max())), rtol=0), name
    assert fc.nbytes > 0 and len(fc) == len(tr)


def test_cached_training_matches_plain(data, tmp_path):
    tr, va = data
    base = dict(model="bp", cutoff=4.0, epochs=3, batch_size=3, lr=3e-3, w_forces=1.0, w_stress=0.1,
                model_hparams=dict(n_radial=5, n_angular=2, hidden=[8]))  # fmt: skip
    runs = [train(TrainConfig(**base, cache_features=c), tr, va, tmp_path / str(c), progress=False)
            for c in (False, True)]  # fmt: skip
    for h0, h1 in zip(runs[0].history, runs[1].history):
        assert h1["valid_loss"] == pytest.approx(h0["valid_loss"], rel=1e-6)
        assert h1["train_loss"] == pytest.approx(h0["train_loss"], rel=1e-6)
    # the saved model is an ordinary BP model: it predicts without any cache
    p = compute_properties(runs[1].model, collate([AtomsDataset(va, 4.0)[0]]))
    assert torch.isfinite(p.forces).all()


def test_resume_with_cache(data, tmp_path):
    tr, va = data
    cfg = dict(model="bp", cutoff=4.0, epochs=4, batch_size=3, w_forces=1.0, cache_features=True,
               model_hparams=dict(n_radial=4, n_angular=2, hidden=[8]))  # fmt: skip
    full = train(TrainConfig(**cfg), tr, va, tmp_path / "full", progress=False)
    train(
        TrainConfig(**cfg), tr, va, tmp_path / "cut", progress=False, stop_after_batches=2 * 4 + 1
    )
    res = train(TrainConfig(**cfg), tr, va, tmp_path / "cut", resume=True, progress=False)
    assert res.history[-1]["valid_loss"] == pytest.approx(full.history[-1]["valid_loss"], rel=1e-10)


class Smeared(nn.Module):
    "A (deliberately non-local) descriptor: an atom's feature adds its neighbours' radial sums"

    cutoff, n_features = 4.0, 2

    def forward(self, numbers, d_ij, idx_i, idx_j):
        r = d_ij.norm(dim=1)
        own = d_ij.new_zeros(len(numbers), 2).index_add(0, idx_i, torch.stack([r, r**2], 1))
        return own + d_ij.new_zeros(len(numbers), 2).index_add(0, idx_i, own[idx_j])

    def hparams(self):
        return {}


class Learned(Smeared):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))


def test_refuses_what_cannot_be_cached(data):
    tr, _ = data
    ds = AtomsDataset(tr, 4.0)
    for desc, msg in [(Smeared(), "depends on pair vectors of other atoms"),
                      (Learned(), "trainable parameters")]:  # fmt: skip
        model = BPModel([8, 28, 29], desc, hidden=[4]).double()
        with pytest.raises(ValueError, match=msg):
            FeatureCache(model, ds)
    with pytest.raises(ValueError, match="needs a BP model"):
        FeatureCache(build_model("schnet", [8, 28, 29], 4.0, n_features=4), ds)
    with pytest.raises(ValueError, match="cache_features needs fixed descriptors"):
        TrainConfig(model="painn", cache_features=True).validate()
