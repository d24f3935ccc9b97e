"""Write tests/data/qpcr/zip_bomb.rdml: a 0.2 MB zip that unpacks to 250 MB of RDML XML.

It stands for a decompression bomb dropped into the qPCR folder (a file that is small on
disk and huge in memory once unzipped). ckpk must refuse it before unpacking it, naming
the limit (config qpcr.max_unzipped_mb, default 200 MB). Re-run to recreate it:

    python tests/data/tools/make_zip_bomb.py
"""

import zipfile
from pathlib import Path

TARGET = Path(__file__).resolve().parents[1] / "qpcr" / "zip_bomb.rdml"
UNZIPPED_MB = 250


def main() -> None:
    block = b" " * (1 << 20)
    with zipfile.ZipFile(TARGET, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open("rdml_data.xml", "w", force_zip64=True) as member:
            member.write(b'<?xml version="1.0"?><rdml version="1.1">')
            for _ in range(UNZIPPED_MB):
                member.write(block)
            member.write(b"</rdml>")
    print(f"{TARGET}: {TARGET.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
