"""The generated documents live in the package (the demo draws with them too)."""

from recovery_app.prechecks.specimens import *  # noqa: F401,F403
from recovery_app.prechecks.specimens import Image  # noqa: F401  (bench/precheck.py opens bytes with it)
