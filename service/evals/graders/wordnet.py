"""The WordNet database for meteor, read by NLTK's `WordNetCorpusReader`.

NLTK's reader needs a WordNet 3.0 `dict` directory (`index.*`, `data.*`, `*.exc`) and its
`lexnames` file. Debian's `wordnet-base` package ships the database in `/usr/share/wordnet` but not
`lexnames` (it only documents it, in lexnames(5WN)); for such a directory an overlay is laid out once
(copies of its files, as NLTK reads no links, plus `lexnames` written from WordNet 3.0's fixed list of lexicographer files),
so no data is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

# WordNet 3.0's lexicographer files: number, name, syntactic category (1 noun, 2 verb, 3 adj, 4 adv).
LEXNAMES = (
    ["adj.all 3", "adj.pert 3", "adv.all 4", "noun.Tops 1"]
    + [
        f"noun.{name} 1"
        for name in (
            "act animal artifact attribute body cognition communication event feeling food group "
            "location motive object person phenomenon plant possession process quantity relation "
            "shape state substance time"
        ).split()
    ]
    + [
        f"verb.{name} 2"
        for name in (
            "body change cognition communication competition consumption contact creation emotion "
            "motion perception possession social stative weather"
        ).split()
    ]
    + ["adj.ppl 3"]
)


class WordNetMissing(RuntimeError):
    pass


def _with_lexnames(path: Path) -> Path:
    if (path / "lexnames").is_file():
        return path
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    overlay = Path(tempfile.gettempdir()) / f"ftm-wordnet-{digest}"
    overlay.mkdir(exist_ok=True)
    for source in path.iterdir():
        link = overlay / source.name
        if source.is_file() and not link.exists():
            # NLTK refuses symbolic and hard links (they may point out of its root): a copy.
            partial = overlay / f"{source.name}.{digest}.tmp"
            shutil.copyfile(source, partial)
            partial.replace(link)
    lexnames = overlay / "lexnames"
    if not lexnames.exists():
        partial = overlay / f"lexnames.{digest}.tmp"
        partial.write_text(
            "".join(f"{number:02d}\t{line.replace(' ', chr(9))}\n" for number, line in enumerate(LEXNAMES))
        )
        partial.replace(lexnames)
    return overlay


@lru_cache(maxsize=2)
def wordnet_reader(directory: str) -> Any:
    """NLTK's WordNet reader over `directory` (NLTK reads only from directories on its data
    path, so the directory read is added to it)."""
    import nltk.data
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    path = Path(directory)
    if not (path / "index.noun").is_file():
        raise WordNetMissing(
            f"'{directory}' holds no WordNet database (no index.noun); meteor needs one (FTM_EVALS_WORDNET_DIR)."
        )
    root = _with_lexnames(path)
    if str(root) not in nltk.data.path:
        nltk.data.path.append(str(root))

    class EnglishWordNet(WordNetCorpusReader):  # type: ignore[misc]
        def map_wn(self, version: str = "wordnet") -> None:
            # The map to other WordNet versions serves the multilingual (OMW) lookups only, which
            # meteor does not use (and which would need the index.sense file besides).
            return None

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The multilingual functions", UserWarning)
        return EnglishWordNet(str(root), None)
