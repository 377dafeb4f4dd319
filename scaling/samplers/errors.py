"""The one error type of the samplers (its own module: the registry and the samplers both raise it)."""


class SamplerConfigError(ValueError):
    """A sampler setting that cannot work (with this corpus); raised before any worker starts."""
