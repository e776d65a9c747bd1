"""The spiders: ``court``, ``penalties`` and ``news`` (see each module)."""
