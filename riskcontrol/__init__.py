"""Big-data risk control pipeline for internet-finance lenders."""

__version__ = "0.1.0"
