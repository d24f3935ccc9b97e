"""Exports of the results: CDISC SDTM PC/PP (TSV and SAS transport v5), an Excel workbook
and Parquet copies of every table."""
