"""The terminal UI of the Endpoints Toolkit (``endpoints tui``): a Textual client of the SDK.

The toolkit never imports this package; this package only talks to the host through
``toolkit.Workspace``.
"""

__all__: list[str] = []
