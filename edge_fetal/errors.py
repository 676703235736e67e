"""Errors the user can act on.

Every exception raised for bad input derives from `EdgeFetalError`; the command line prints its
message (one sentence naming the problem) instead of a trace.
"""


class EdgeFetalError(Exception):
    """Base class: bad input or an environment the engine cannot use, explained in words."""


class CalibrationError(EdgeFetalError):
    """The pixel spacing is missing, invalid or ambiguous, so no length in mm may be shown."""


class DatasetError(EdgeFetalError):
    """A dataset folder or CSV is missing, malformed or inconsistent."""


class MaskError(EdgeFetalError):
    """A mask cannot be measured at all (wrong type or shape); quality problems are withheld, not raised."""


class BackendError(EdgeFetalError):
    """An inference backend cannot run here (missing library, no GPU, mismatched engine)."""
