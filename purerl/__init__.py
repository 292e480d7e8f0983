"""purerl: a JAX reinforcement-learning algorithm zoo."""

__version__ = "0.1.0"
