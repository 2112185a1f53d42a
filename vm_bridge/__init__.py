"""HTTP <-> ACP bridge that runs inside the sandbox VM (docs/bridge-contract.md).

Standalone: imports nothing from the Django apps, so it can be copied into a VM image alone.
"""

__version__ = "0.1.0"
