"""Write the project's second text and the default corpus as plain UTF-8 files, for ``--text`` / ``--calib-text``.

    python sim/texts.py [OUT_DIR]        # default build/texts

``pydoc.txt``: the help topics of Python's own documentation (``pydoc_data.topics``, shipped with every CPython;
the topics joined in sorted order), technical prose unlike the default corpus. ``devil.txt``: the default corpus
(The Devil's Dictionary) as ``fineq eval`` reads it. Files are written atomically; existing ones are replaced
(they are derived, never inputs).
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> None:
    from pydoc_data.topics import topics

    from fineq.llm import corpus
    from fineq.outputs import write_text_atomic

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "build/texts")
    out.mkdir(parents=True, exist_ok=True)
    pydoc = "\n\n".join(topics[k].strip() for k in sorted(topics)) + "\n"
    devil, _ = corpus.read_text(None)
    for name, text in (("pydoc.txt", pydoc), ("devil.txt", devil)):
        write_text_atomic(out / name, text)
        print(f"wrote {out / name}: {len(text):,} characters")


if __name__ == "__main__":
    main()
