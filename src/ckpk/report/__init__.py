"""ckpk.report."""
