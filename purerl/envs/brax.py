"""Brax environments behind the gymnax-1.0 functional API.

Brax's own episode wrapper merges the time limit into `done`; here the base brax env is used unwrapped,
its `done` is the natural *termination*, and truncation comes from `max_steps_in_episode` (default 1000,
the usual MuJoCo limit), so agents can bootstrap on truncation. Auto-reset happens inside `step` with a
fresh random initial state, as gymnax does; the pre-reset observation is kept in
`info["final_observation"]`. (A fresh reset each step costs ~0-40% of a step on CPU depending on the
backend; brax's own AutoResetWrapper avoids it by replaying one initial state per env forever.)
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import typing
import warnings
from typing import Any, Literal

import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

BRAX_ENVS = (
    "ant",
    "halfcheetah",
    "hopper",
    "humanoid",
    "inverted_double_pendulum",
    "inverted_pendulum",
    "reacher",
    "swimmer",
    "walker2d",
)
BraxBackend = Literal["generalized", "positional", "spring", "mjx"]
BRAX_BACKENDS: tuple[str, ...] = typing.get_args(BraxBackend)


@struct.dataclass
class BraxEnvParams(environment.EnvParams):
    max_steps_in_episode: int = 1000


@struct.dataclass
class BraxEnvState(environment.EnvState):
    brax_state: Any
    time: int


def _import_brax_envs():
    """`brax.envs`, imported without the lines that mujoco's MJX prints when the optional GPU packages
    (warp, mujoco_warp) are absent: `mujoco/mjx/warp/__init__.py` prints them to stdout on import. They are
    irrelevant on CPUs and confused new users; any other output of the import is passed on."""
    logging.getLogger("absl").setLevel(logging.ERROR)  # and absl's import-time warnings
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        from brax import envs
    other = [line for line in captured.getvalue().splitlines() if not line.startswith("Failed to import ")]
    if other:
        print("\n".join(other))
    return envs


@contextlib.contextmanager
def _models_on_a_local_device():
    """Make brax's MJCF loader put the model's arrays on this process's own device.

    brax builds every system through `mujoco.mjx.put_model(mj)`, which (with no device given) picks
    `jax.devices()[0]`. Once `jax.distributed` is up, that is process 0's device in *every* process, so in
    the others the env's constants live on a device they cannot address, and the first jit that closes over
    them fails ("Closing over jax.Array that spans non-addressable devices"). `jax.local_devices()[0]` is the
    same device in a single-process run.
    """
    import jax
    from mujoco import mjx

    put_model = mjx.put_model

    def put_model_locally(m, device=None, **kwargs):
        return put_model(m, device=device or jax.local_devices()[0], **kwargs)

    mjx.put_model = put_model_locally
    try:
        yield
    finally:
        mjx.put_model = put_model


class BraxEnv(environment.Environment):
    """A brax env (`brax.envs.get_environment(name, backend=...)`) as a gymnax environment."""

    def __init__(self, name: str, backend: str = "generalized", **brax_kwargs):
        if name not in BRAX_ENVS:
            raise ValueError(f"unknown brax env {name!r}; valid: {', '.join(BRAX_ENVS)}")
        if backend not in BRAX_BACKENDS:
            raise ValueError(f"unknown brax backend {backend!r}; valid: {', '.join(BRAX_BACKENDS)}")
        brax_envs = _import_brax_envs()

        self._name = name
        self.backend = backend
        with warnings.catch_warnings(), _models_on_a_local_device():
            warnings.simplefilter("ignore", UserWarning)  # brax warns that it is unmaintained on every build
            self.brax_env = brax_envs.get_environment(name, backend=backend, **brax_kwargs)

    @property
    def name(self) -> str:
        return self._name

    @property
    def default_params(self) -> BraxEnvParams:
        return BraxEnvParams()

    def reset_env(self, key, params):
        brax_state = self.brax_env.reset(key)
        return brax_state.obs, BraxEnvState(brax_state=brax_state, time=0)

    def step_env(self, key, state, action, params):
        brax_state = self.brax_env.step(state.brax_state, action)
        terminated = brax_state.done > 0.5
        new_state = BraxEnvState(brax_state=brax_state, time=state.time + 1)
        return brax_state.obs, new_state, brax_state.reward, terminated, {}

    def is_terminated(self, state, params):
        return state.brax_state.done > 0.5

    @functools.cached_property
    def _obs_size(self) -> int:
        # brax's `observation_size` runs a reset op by op (~40 s for ant on a loaded 2-core CPU);
        # tracing it for the shape alone takes about a second.
        import jax

        return int(jax.eval_shape(self.brax_env.reset, jax.random.PRNGKey(0)).obs.shape[-1])

    def action_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (self.brax_env.action_size,), jnp.float32)

    def observation_space(self, params=None):
        return spaces.Box(-jnp.inf, jnp.inf, (self._obs_size,), jnp.float32)

    @property
    def num_actions(self) -> int:
        return self.brax_env.action_size


