"""What a printer can do, from python-escpos's capability database.

Each printer gets one profile of ``escpos.capabilities`` (paper width, columns,
QR/graphics support). The user may name it (``?profile=TM-T88V`` on the printer
URI); otherwise it is chosen from the model the printer reports (``GS I``, the
USB IEEE 1284 id, an mDNS TXT record), and ``default`` (42 columns) when the
model is unknown. ``?columns=N`` overrides the column count of any profile, for
the many 58 mm printers whose model nobody knows.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from typing import Any

from pm_agent.printer_language import DEFAULT_LANGUAGE, check_language, language_for_model
from pm_core.protocol import profiles

log = logging.getLogger(__name__)

DEFAULT_PROFILE = "default"
DEFAULT_COLUMNS = 42

#: Model names as printers report them -> the closest profile in the database.
#: Matched as a prefix of the normalised model name, longest first; an exact
#: profile name always wins. Only entries whose paper width and font columns
#: agree with the profile are listed.
MODEL_PROFILES: dict[str, str] = {
    "TM-T88VII": "TM-T88V",
    "TM-T88VI": "TM-T88V",
    "TM-T88V": "TM-T88V",
    "TM-T88IV": "TM-T88IV",
    "TM-T88III": "TM-T88III",
    "TM-T88II": "TM-T88II",
    "TM-T20III": "TM-T20II",
    "TM-T20II": "TM-T20II",
    "TM-T20": "TM-T20II",
    "TM-L90": "TM-L90",
    "TM-P80": "TM-P80",
    "TM-U220": "TM-U220",
    "CT-S651": "CT-S651",
    "TSP6": "TSP600",
    "TSP7": "TSP600",
    "TUP5": "TUP500",
    "SP2": "SP2000",
    "RP326": "RP326",
    "RP-F10-58": "RP-F10-58mm",
    "RP-F10-80": "RP-F10-80mm",
    "POS-5890": "POS-5890",
    "POS58": "POS-5890",
    "ZJ-5870": "ZJ-5870",
    "NT-5890K": "NT-5890K",
    "TH230+": "TH230Plus",
    "TH230PLUS": "TH230Plus",
    "TH230": "TH230",
}


def _profiles() -> dict[str, Any]:
    from escpos.capabilities import CAPABILITIES

    profiles: dict[str, Any] = CAPABILITIES["profiles"]
    return profiles


def profile_names() -> list[str]:
    """Every profile name python-escpos knows."""
    return list(profiles.profile_names())


def check_profile(name: str) -> str:
    """``name`` if it is a known profile; ValueError listing the known ones otherwise."""
    if not profiles.is_known_profile(name):
        raise ValueError(profiles.unknown_profile_message(name))
    return name


def _normalise(model: str) -> str:
    return re.sub(r"[\s_]+", "", model.strip().upper())


def _profile_for_name(wanted: str) -> str | None:
    for name in _profiles():
        if name != DEFAULT_PROFILE and _normalise(name) == wanted:
            return name
    for prefix in sorted(MODEL_PROFILES, key=len, reverse=True):
        if wanted.startswith(_normalise(prefix)):
            return MODEL_PROFILES[prefix]
    return None


def profile_for_model(model: str | None) -> str | None:
    """The profile for a reported model name, or None when the model is unknown.

    The name may carry the maker and more in front or behind, as mDNS TXT records and
    USB product strings do (``EPSON TM-T20II Receipt``): each word is tried as the start.
    """
    if not model:
        return None
    words = model.replace("(", " ").replace(")", " ").split()
    for start in range(len(words)):
        found = _profile_for_name(_normalise(" ".join(words[start:])))
        if found:
            return found
    return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


@dataclass(frozen=True)
class PrinterCapabilities:
    """What goes to the hub as ``capabilities`` and sets the worker's layout width."""

    profile: str
    source: str  #: "user", "model" or "default"
    vendor: str | None
    paper_width_mm: float | None
    paper_width_dots: int | None
    dpi: int | None
    columns: int
    columns_font_b: int | None
    qr: bool
    graphics: bool  #: can print images (raster, column or GS ( L graphics)
    barcode: bool
    cutter: bool
    partial_cut: bool
    pdf417: bool
    star_commands: bool
    features: tuple[str, ...]  #: every feature the profile marks as supported
    #: The command language (:mod:`pm_agent.printer_language`): escpos, star_line, ...
    language: str = DEFAULT_LANGUAGE

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["features"] = list(self.features)
        return data


def capabilities_for(
    model: str | None = None,
    *,
    profile: str | None = None,
    columns: int | None = None,
    language: str | None = None,
) -> PrinterCapabilities:
    """The capabilities of a printer: the user's ``profile`` if given, else the
    profile of its ``model``, else the default profile; ``columns`` overrides; the
    ``language`` given, else the model's, else ESC/POS."""
    if profile:
        name, source = check_profile(profile), "user"
    else:
        found = profile_for_model(model)
        name, source = (found, "model") if found else (DEFAULT_PROFILE, "default")
    data = _profiles()[name]
    features: dict[str, Any] = data.get("features") or {}
    fonts: dict[str, Any] = data.get("fonts") or {}
    media: dict[str, Any] = data.get("media") or {}
    width: dict[str, Any] = media.get("width") or {}
    font_a = (fonts.get("0") or {}).get("columns")
    font_b = (fonts.get("1") or {}).get("columns")
    dots = _number(width.get("pixels"))
    dpi = _number(media.get("dpi"))
    if columns is not None:
        source = "user"
    else:
        columns = font_a if isinstance(font_a, int) and font_a >= 16 else DEFAULT_COLUMNS
    return PrinterCapabilities(
        profile=name,
        source=source,
        vendor=data.get("vendor"),
        paper_width_mm=_number(width.get("mm")),
        paper_width_dots=int(dots) if dots else None,
        dpi=int(dpi) if dpi else None,
        columns=int(columns),
        columns_font_b=font_b if isinstance(font_b, int) else None,
        qr=bool(features.get("qrCode")),
        graphics=any(features.get(f) for f in ("graphics", "bitImageRaster", "bitImageColumn")),
        barcode=bool(features.get("barcodeA") or features.get("barcodeB")),
        cutter=bool(features.get("paperFullCut") or features.get("paperPartCut")),
        partial_cut=bool(features.get("paperPartCut")),
        pdf417=bool(features.get("pdf417Code")),
        star_commands=bool(features.get("starCommands")),
        features=tuple(sorted(k for k, v in features.items() if v)),
        language=check_language(language) if language else _model_language(model),
    )


def _model_language(model: str | None) -> str:
    return language_for_model(model) or DEFAULT_LANGUAGE


def capabilities_from_options(
    options: dict[str, str], model: str | None = None
) -> PrinterCapabilities:
    """Capabilities for a configured printer: ``?profile=``, ``?columns=`` and
    ``?language=`` win over the reported ``model``."""
    columns = options.get("columns")
    return capabilities_for(
        model,
        profile=options.get("profile") or None,
        columns=int(columns) if columns and columns.isdigit() else None,
        language=options.get("language") or None,
    )
