"""purerl: a JAX reinforcement-learning algorithm zoo."""

from purerl import deferred_imports

__version__ = "0.1.0"

deferred_imports.install()  # before gymnax can be imported: its plotting imports wait until first used


def load(directory: str, checkpoint: int | None = None):
    """A saved run at a checkpoint (default: the last): `.config`, `.params` per seed and a jitted
    `.act(obs, key)`; see `purerl.saved.load`.

    Imported here on first use: `import purerl` stays free of jax, so the command line can set XLA's flags
    before jax starts."""
    from purerl import saved

    return saved.load(directory, checkpoint)
