"""liqstress: streaming liquidation stress from crypto derivatives venues."""

__version__ = "0.1.0"
