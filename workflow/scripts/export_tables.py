"""The Excel workbook of the main tables and Parquet copies of every table
(rule export_tables)."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")

from ckpk.export.tables import write_parquet, write_workbook

sm = snakemake
results = Path(sm.output.workbook).parent  # ckpk_results.xlsx sits in results_dir
sheets = write_workbook(results, Path(sm.output.workbook), sm.params.end)
written = write_parquet(results, Path(sm.output.parquet))
print(f"sheets: {', '.join(sheets)}; {len(written)} Parquet tables", file=sys.stderr)
