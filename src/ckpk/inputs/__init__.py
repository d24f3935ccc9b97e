"""The input folder: its entries, the subject and sample sheets, identity and the ledger.

Layout of the folder in config/README.md; the rules in docs/rules.md. Split by concept:

- :mod:`.discovery`: every entry of the folder, links and special files, file kinds;
- :mod:`.sheets`: ``subjects.tsv`` and ``samples.tsv``, checked row by row;
- :mod:`.identity`: subject and study day from a name or a sheet row;
- :mod:`.ledger`: the ledger of every entry and the manifest of usable files.
"""

from .discovery import (
    FCS_EXTENSIONS,
    QPCR_EXTENSIONS,
    Entry,
    check_input_folder,
    classify,
    list_input_files,
    listing_signature,
    scan_input,
    sha256_of,
)
from .identity import (
    DEFAULT_NAME_PATTERN,
    Identity,
    check_name_pattern,
    identify,
    plausible_day,
    sample_sheet_row,
)
from .ledger import (
    LEDGER_COLUMNS,
    MANIFEST_COLUMNS,
    STAGE_LEDGER_COLUMNS,
    IngestResult,
    ingest,
    merge_ledger,
)
from .sheets import (
    CLINICAL_COLUMNS,
    CLINICAL_SHEET,
    SAMPLE_COLUMNS,
    SAMPLE_NUMBER_COLUMNS,
    SAMPLES_SHEET,
    SUBJECT_COLUMNS,
    SUBJECTS_SHEET,
    Sheets,
    load_sheets,
    read_clinical,
    read_samples,
    read_subjects,
    sheet_file,
)

__all__ = [
    "CLINICAL_COLUMNS",
    "CLINICAL_SHEET",
    "DEFAULT_NAME_PATTERN",
    "FCS_EXTENSIONS",
    "LEDGER_COLUMNS",
    "MANIFEST_COLUMNS",
    "QPCR_EXTENSIONS",
    "SAMPLES_SHEET",
    "SAMPLE_COLUMNS",
    "SAMPLE_NUMBER_COLUMNS",
    "STAGE_LEDGER_COLUMNS",
    "SUBJECTS_SHEET",
    "SUBJECT_COLUMNS",
    "Entry",
    "Identity",
    "IngestResult",
    "Sheets",
    "check_input_folder",
    "check_name_pattern",
    "classify",
    "identify",
    "ingest",
    "list_input_files",
    "listing_signature",
    "load_sheets",
    "merge_ledger",
    "plausible_day",
    "read_clinical",
    "read_samples",
    "read_subjects",
    "sample_sheet_row",
    "scan_input",
    "sha256_of",
    "sheet_file",
]
