"""Built-in targets: real examples used by the demo and the tests, and the history cleanup.

Importing this package registers them in the process-wide registry.
"""

from app.targets import builtin  # noqa: F401
