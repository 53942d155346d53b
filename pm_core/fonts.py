"""The fonts text is drawn with when a printer cannot print it as text.

:class:`FontSet` is an ordered list of font files: for each character, the first
file whose character map holds it draws it. :func:`find_fonts` builds one from

1. the files or folders given by the user (``pm agent --font PATH``, repeatable),
2. the folders in ``PM_FONT_PATH`` (separated like ``PATH``),
3. the system's font folders: ``/usr/share/fonts``, ``/usr/local/share/fonts``,
   ``~/.local/share/fonts``, ``~/.fonts`` (and ``C:\\Windows\\Fonts``,
   ``/Library/Fonts``, ``/System/Library/Fonts`` where they exist),

in that order; within the system folders, plain sans-serif faces known to cover
many scripts come first (DejaVu Sans, Noto Sans and its per-script families,
WenQuanYi Micro Hei, Noto Sans CJK), then every other upright regular face by name.
Bold, italic and other weights are skipped (bold is drawn by thickening the
strokes). docs/printers.md says which Debian packages cover which scripts.

Character maps are read with fontTools, lazily (a file is opened only when no
earlier one holds a character asked for) and kept for the life of the process.
"""

from __future__ import annotations

import logging
import os
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")
SYSTEM_FONT_DIRS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
    "C:\\Windows\\Fonts",
)
FONT_PATH_ENV = "PM_FONT_PATH"
#: File names (lower case, without suffix) preferred in this order over any other.
PREFERRED_FACES = (
    "dejavusans",
    "notosans-regular",
    "notosansarabic-regular",
    "notosansarabicui-regular",
    "notosanshebrew-regular",
    "notosansthai-regular",
    "notosansthaiui-regular",
    "notosansdevanagari-regular",
    "notosansbengali-regular",
    "notosanstamil-regular",
    "notosansarmenian-regular",
    "notosansgeorgian-regular",
    "notosansethiopic-regular",
    "notosanskhmer-regular",
    "notosanslao-regular",
    "notosansmyanmar-regular",
    "notosanssinhala-regular",
    "wqy-microhei",
    "notosanscjk-regular",
    "wqy-zenhei",
)
#: Words in a file name that mark a face other than the plain upright one.
_STYLED = (
    "bold",
    "italic",
    "oblique",
    "light",
    "thin",
    "black",
    "medium",
    "semibold",
    "extrabold",
    "condensed",
    "semicondensed",
    "extracondensed",
    "heavy",
    "display",
    "mono",
    "math",
)
#: Characters that need no glyph of their own: joiners, marks of direction,
#: variation selectors (Unicode category Cf, and the selectors).
_NO_GLYPH_CATEGORIES = frozenset({"Cf", "Zl", "Zp"})


def needs_glyph(char: str) -> bool:
    """False for whitespace and invisible format characters (nothing to draw)."""
    if char.isspace():
        return False
    if 0xFE00 <= ord(char) <= 0xFE0F or 0xE0100 <= ord(char) <= 0xE01EF:
        return False
    return unicodedata.category(char) not in _NO_GLYPH_CATEGORIES


def _style_rank(path: Path) -> int | None:
    """0 for a preferred face (its place + 0), else 1000 for a plain face, None for a
    styled one (skipped)."""
    stem = path.stem.lower()
    if stem in PREFERRED_FACES:
        return PREFERRED_FACES.index(stem)
    words = stem.replace("_", "-").split("-")[1:] or [""]
    if any(style in word for word in words for style in _STYLED):
        return None
    return 1000


def _files_in(folder: Path) -> list[Path]:
    try:
        return sorted(
            p for p in folder.rglob("*") if p.suffix.lower() in FONT_SUFFIXES and p.is_file()
        )
    except OSError:
        return []


def _env_dirs() -> list[Path]:
    env = os.environ.get(FONT_PATH_ENV, "")
    return [Path(d).expanduser() for d in env.split(os.pathsep) if d]


def font_search_path() -> list[Path]:
    """The folders searched for fonts, in order: ``PM_FONT_PATH``'s, the system's."""
    folders = _env_dirs() + [Path(d).expanduser() for d in SYSTEM_FONT_DIRS]
    return [d for d in folders if d.is_dir()]


def _ranked(folders: Iterable[Path]) -> list[Path]:
    """The plain faces in ``folders``, the preferred ones first, then by name."""
    ranked: list[tuple[int, str, Path]] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in _files_in(folder):
            rank = _style_rank(path)
            if rank is not None:
                ranked.append((rank, path.name.lower(), path))
    return [path for _, _, path in sorted(ranked)]


class FontSet:
    """Font files in order of preference; :meth:`face_for` names the first that holds
    a character. Thread-safe (the agent renders on each printer's thread)."""

    def __init__(self, files: Sequence[Path]) -> None:
        self.files: tuple[Path, ...] = tuple(dict.fromkeys(Path(f) for f in files))
        self._maps: dict[Path, frozenset[int]] = {}
        self._lock = threading.Lock()
        self._by_char: dict[str, Path | None] = {}

    def __repr__(self) -> str:
        return f"FontSet({len(self.files)} files)"

    def _cmap(self, path: Path) -> frozenset[int]:
        found = self._maps.get(path)
        if found is None:
            found = _read_cmap(path)
            self._maps[path] = found
        return found

    def face_for(self, char: str) -> Path | None:
        """The first font file that holds ``char``, or None."""
        try:
            return self._by_char[char]
        except KeyError:
            pass
        code = ord(char)
        with self._lock:
            face = next((f for f in self.files if code in self._cmap(f)), None)
            self._by_char[char] = face
        return face

    def covers(self, path: Path, char: str) -> bool:
        with self._lock:
            return ord(char) in self._cmap(path)

    def missing(self, text: str) -> list[str]:
        """The distinct characters of ``text`` that no font of the set holds."""
        return [c for c in dict.fromkeys(text) if needs_glyph(c) and self.face_for(c) is None]


def _read_cmap(path: Path) -> frozenset[int]:
    from fontTools.ttLib import TTFont  # lazy: only when text is drawn

    try:
        kwargs: dict[str, Any] = {"lazy": True}
        if path.suffix.lower() in (".ttc", ".otc"):
            kwargs["fontNumber"] = 0
        with TTFont(str(path), **kwargs) as font:
            best = font["cmap"].getBestCmap() or {}
            return frozenset(best)
    except Exception as exc:  # a broken or unreadable file is left out
        logger.warning("font %s left out: %s", path, exc)
        return frozenset()


def find_fonts(
    user_fonts: Iterable[str | Path] = (), *, search_dirs: Iterable[str | Path] | None = None
) -> FontSet:
    """The font set of this machine: ``user_fonts`` (files, or folders searched
    whole) first, then ``PM_FONT_PATH``'s folders, then the system's (or only
    ``search_dirs`` when given)."""
    files: list[Path] = []
    for given in user_fonts:
        path = Path(given).expanduser()
        files += _files_in(path) if path.is_dir() else [path]
    if search_dirs is not None:
        files += _ranked(Path(d) for d in search_dirs)
    else:
        files += _ranked(_env_dirs())
        files += _ranked(Path(d).expanduser() for d in SYSTEM_FONT_DIRS)
    return FontSet(files)


_user_fonts: tuple[Path, ...] = ()


def use_fonts(paths: Iterable[str | Path]) -> None:
    """Put ``paths`` (font files or folders, ``--font``) before the search path in
    :func:`default_fonts` from now on; ValueError naming a path that is not there."""
    global _user_fonts
    given = tuple(Path(p).expanduser() for p in paths)
    for path in given:
        if not (path.is_dir() or (path.is_file() and path.suffix.lower() in FONT_SUFFIXES)):
            raise ValueError(f"{path}: not a font file ({', '.join(FONT_SUFFIXES)}) or folder")
    _user_fonts = given
    default_fonts.cache_clear()


@cache
def default_fonts() -> FontSet:
    """The font set of this process: :func:`use_fonts`'s, then the search path (found
    once)."""
    return find_fonts(_user_fonts)
