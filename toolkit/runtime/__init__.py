"""The model runtime: what runs inside one instance process.

The host side (gateway, supervisor, autoscaler, route table) lives in :mod:`toolkit.online`; it
starts ``python -m toolkit.runtime.instance`` per instance and talks to it over a private Unix
socket.  Nothing here imports :mod:`toolkit.online` or :mod:`toolkit.host`, so local testing
(:mod:`toolkit.runtime.local`) and the batch runner can load and score a model without the server.
"""

__all__: list[str] = []
