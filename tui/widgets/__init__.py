"""The views (one per tab) and the small widgets they are built from."""

__all__: list[str] = []
