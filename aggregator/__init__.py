"""We Remember: collect, moderate and project remembrance-campaign photos."""

__version__ = "0.1.0"
