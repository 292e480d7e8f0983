"""benchmarks/reference/npg_igt.py (the check against the authors' garage fork) without their code: the weight
layout between their torch policy and purerl's flat θ, the episodes handed to their side, and bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.reference import npg_igt as reference
from purerl import pg_estimators as pge


def torch_layout_layers(seed: int = 0) -> dict:
    """Random layers in their layout: weight (out, in), bias (out,), CartPole's 4 -> 32 -> 32 -> 2."""
    rng = np.random.default_rng(seed)
    sizes = [(4, 32), (32, 32), (32, 2)]
    return {f"l{i}": {"weight": rng.normal(size=(n_out, n_in)) * 0.4, "bias": rng.normal(size=n_out) * 0.1}
            for i, (n_in, n_out) in enumerate(sizes)}


def test_weights_map_onto_purerl_policy_exactly():
    """θ = ravel(their layers) makes purerl's policy compute their network's log-probabilities (tanh MLP,
    softmax over y = x W^T + b), and layers_of(θ) gives their layers back bit for bit."""
    ravel, layers_of = reference.policy_layout()
    layers = torch_layout_layers()
    theta = ravel(layers)
    back = layers_of(theta)
    for name, layer in layers.items():
        np.testing.assert_array_equal(back[name]["weight"], layer["weight"])
        np.testing.assert_array_equal(back[name]["bias"], layer["bias"])

    obs = np.random.default_rng(1).normal(size=(7, 4))
    x = obs
    for i in range(3):
        x = x @ layers[f"l{i}"]["weight"].T + layers[f"l{i}"]["bias"]
        x = np.tanh(x) if i < 2 else x
    expected = x - np.log(np.exp(x).sum(-1, keepdims=True))
    config = reference.paired_config("npg_igt")
    with jax.enable_x64(True):
        core = pge.make_core(config)
        got = np.stack([np.asarray(core.policy.logp(jnp.asarray(theta), jnp.asarray(obs), jnp.full(7, a)))
                        for a in (0, 1)], axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_complete_episodes_are_the_masked_segments_in_order():
    """Their side gets exactly the complete episodes of purerl's rollout: contiguous, each starting at step
    0, lengths summing to the mask, and the same rewards-to-go as purerl computed."""
    config = reference.paired_config("npg_igt")
    core = pge.make_core(config)
    theta = core.policy.init(jax.random.key(0))
    ep, _ = jax.jit(core.rollout)(theta, jax.random.key(1))
    batch = reference.complete_episodes(ep)
    mask = np.asarray(ep.mask) > 0
    assert batch["lengths"].sum() == mask.sum() == len(batch["obs"]) == len(batch["actions"])
    assert len(batch["lengths"]) == int(ep.num_episodes)
    starts = np.r_[0, np.cumsum(batch["lengths"])[:-1]]
    np.testing.assert_array_equal(np.asarray(ep.time)[mask][starts], 0)
    rtg = np.asarray(ep.reward_to_go)[mask]
    for start, length in zip(starts, batch["lengths"], strict=True):
        rewards = batch["rewards"][start:start + length]
        expected = [sum(rewards[j:] * config.discount ** np.arange(length - j)) for j in range(length)]
        np.testing.assert_allclose(rtg[start:start + length], expected, rtol=1e-5)


@pytest.mark.parametrize("argv", [
    ["--authors-code", "/nonexistent"],
    ["--authors-code", ".", "--rounds", "-1"],
])
def test_bad_input_is_one_line_and_exit_2(argv, capsys, tmp_path):
    if argv[1] == ".":  # a directory that looks like their checkout, so --rounds is what is wrong
        (tmp_path / "torch" / "algos").mkdir(parents=True)
        (tmp_path / "torch" / "algos" / "NIGT.py").write_text("")
        argv = ["--authors-code", str(tmp_path), "--reference-python", "/bin/sh", *argv[2:]]
    with pytest.raises(SystemExit) as exit_info:
        reference.parse(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("purerl: error: ")
