"""The error type of the claim engine."""

from __future__ import annotations

from harness.config import ConfigError

__all__ = ["ClaimError"]


class ClaimError(ConfigError):
    """A claim file, a run table or a claim evaluation is malformed.

    Like :class:`harness.config.ConfigError` it names the YAML path (or table column), the
    offending value and what is allowed; ``source`` is the claim file when known.
    """

    def under(self, prefix: str) -> ClaimError:
        """The same error with its path below ``prefix`` (``checks[0].rule`` + ``op``)."""
        path = f"{prefix}.{self.path}" if self.path else prefix
        err = ClaimError(path, self.value, self.allowed, source=self.source)
        err.__cause__ = self.__cause__
        return err

    def with_source(self, source: str) -> ClaimError:
        """The same error, prefixed with the file it came from."""
        if self.source:
            return self
        err = ClaimError(self.path, self.value, self.allowed, source=source)
        err.__cause__ = self.__cause__
        return err
