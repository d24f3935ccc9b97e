"""ckpk — CAR T-cell cellular kinetics from instrument files to PK tables."""

__version__ = "0.1.0"
