"""ckpk.pk."""
