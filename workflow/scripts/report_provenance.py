"""Versions, the configuration used and the main tables as pages (rule report_provenance)."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")

from ckpk.export.provenance import config_text, html_table, versions
from ckpk.tables import write_tsv

sm = snakemake
write_tsv(versions(), sm.output.versions)
Path(sm.output.config).write_text(config_text(sm.params.config), encoding="utf-8")
pages = Path(sm.output.pages)
pages.mkdir(parents=True, exist_ok=True)
for source, name, title in sm.params.tables:
    (pages / f"{name}.html").write_text(html_table(Path(source), title), encoding="utf-8")
