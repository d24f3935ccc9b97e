"""Rewrite the pk/nca.tsv and pk/model_fits.tsv column tables of config/README.md from
the registry of PK parameters (``ckpk parameters --table T --markdown``).

Run after adding or changing a parameter in ``ckpk.pk.parameters``:

    .venv/bin/python docs/tools/update_parameter_tables.py
"""

from pathlib import Path

from ckpk.pk.parameter_tables import parameter_table
from ckpk.pk.parameters import TABLES

README = Path(__file__).resolve().parents[2] / "config" / "README.md"


def main() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    for table, (title, *_rest) in TABLES.items():
        start = lines.index(f"### `{title}`")
        first = next(i for i in range(start, len(lines)) if lines[i].startswith("| column"))
        last = next(i for i in range(first, len(lines)) if not lines[i].startswith("|"))
        lines[first:last] = parameter_table(table, markdown=True).splitlines()
    README.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
