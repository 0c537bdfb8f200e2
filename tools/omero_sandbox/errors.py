from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class SandboxError(Exception):
    """A sandbox could not be built, started, stopped or removed; the message says why and what to do."""
