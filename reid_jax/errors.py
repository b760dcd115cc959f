"""The one exception type for mistakes a user can fix (config, data, workdir).

`reid_jax.main` prints these as a single `error: ...` line and exits with status 2,
never with a stack trace. Dataset problems found by builders are
`data_builders.common.DatasetError`, handled the same way.
"""


class ReidError(ValueError):
    """A user-facing error: the message names the thing that is wrong and the fix."""
