"""Error types whose message is one line that names the file and the failed check."""

from __future__ import annotations

from pathlib import Path


class MedsslError(Exception):
    """Base class for errors that the CLI reports as a single line (no traceback)."""


class DataError(MedsslError):
    """A source file failed a check.

    Args:
        path: the offending file (or folder).
        check: short name of the failed check, e.g. ``"truncated"`` or ``"label-values"``.
        detail: one sentence on what was found.
    """

    def __init__(self, path: str | Path, check: str, detail: str) -> None:
        self.path = Path(path)
        self.check = check
        self.detail = " ".join(str(detail).split())
        super().__init__(f"{self.path}: [{self.check}] {self.detail}")


class DataErrors(MedsslError):  # noqa: N818 - a collection of DataError
    """Several :class:`DataError` at once; ``str()`` gives the first and a count."""

    def __init__(self, errors: list[DataError]) -> None:
        if not errors:
            raise ValueError("DataErrors needs at least one error")
        self.errors = list(errors)
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        super().__init__(f"{errors[0]}{more}")


class WeightsError(MedsslError):
    """A weight source could not be read or imported safely.

    Args:
        source: the weight file, or the named source (``"imagenet"``).
        detail: one sentence on what went wrong and, where possible, what to do.
    """

    def __init__(self, source: str | Path, detail: str) -> None:
        self.source = str(source)
        self.detail = " ".join(str(detail).split())
        super().__init__(f"{self.source}: {self.detail}")


class Preempted(MedsslError):  # noqa: N818 - a state, reported to the user
    """A run stopped on SIGTERM/SIGUSR1 after saving its checkpoint at a step boundary."""

    def __init__(self, run_dir, step: int, signame: str) -> None:
        self.run_dir, self.step, self.signame = run_dir, step, signame
        super().__init__(
            f"{run_dir}: {signame} received; checkpoint saved at step {step}, "
            "continue with --resume"
        )


class NumericalError(MedsslError):
    """Training produced non-finite losses for too many consecutive steps."""
