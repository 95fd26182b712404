"""The few exceptions a Ferrite user or plugin author needs to catch or raise."""


class FerriteError(Exception):
    """Base class: something the operator can fix, with a message that says how."""


class ConfigError(FerriteError):
    """The configuration file, or a plugin's table in it, is wrong."""


class PluginError(FerriteError):
    """A plugin could not be found, loaded or registered."""


class StoreUnavailable(FerriteError):
    """A shared store cannot be reached now (a database server down or restarting); the
    message names it with any password masked. Web routes answer 503: retry later."""


class SinkError(FerriteError):
    """One or more sinks failed to store a batch."""

    def __init__(self, failures: dict[str, BaseException]) -> None:
        self.failures = failures
        detail = "; ".join(f"{name}: {exc!r}" for name, exc in failures.items())
        super().__init__(f"sink(s) failed to store the batch: {detail}")
