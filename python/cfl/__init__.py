"""cfl's Python side: FLARE's Client API (cfl.client) and safetensors files (cfl.safetensors).

A FLARE Client API script runs under cfl's client_api executor with its imports changed from
`nvflare` to `cfl` (docs/python.md).
"""

__version__ = "0.1.0"
