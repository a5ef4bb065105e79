"""The bad-data report: which files a corpus reader skipped (and why) or kept with a remark.

It lives apart from the builders because the builders, the preprocess cache, the pre-fused zips and the
pre-training clip checks all fill or read the same report, so none of them has to import the others for it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field


logger = logging.getLogger(__name__)

#: The bad-data report of a prepared corpus, saved beside its Arrow files in the builder's cache folder.
REPORT_FILENAME = "mmder_bad_data.json"


class BadDataError(ValueError):
    """Raised in strict mode on the first unusable file."""


@dataclass
class BadDataReport:
    """Files skipped because they cannot be used, by reason (``name -> reason``), and files kept with a remark
    (``noted``: e.g. clips in which face cropping found no face and whose whole frames were used)."""

    corpus: str = ""
    skipped: dict = field(default_factory=dict)
    noted: dict = field(default_factory=dict)

    def note(self, name: str, remark: str) -> None:
        """Record that ``name`` was used despite ``remark`` (it is counted in :meth:`summary`, not skipped)."""
        self.noted[name] = remark

    def add(self, name: str, reason: str, strict: bool = False) -> None:
        """Record ``name`` as skipped for ``reason``, or raise :class:`BadDataError` when ``strict``."""
        if strict:
            raise BadDataError(f"{self.corpus}: {name}: {reason} (strict mode; pass strict=False to skip)")
        self.skipped[name] = reason
        logger.debug("skipping %s: %s", name, reason)

    def __len__(self) -> int:
        return len(self.skipped)

    def by_reason(self) -> dict[str, list[str]]:
        """``reason -> sorted names``."""
        out = defaultdict(list)
        for name, reason in self.skipped.items():
            out[reason].append(name)
        return {reason: sorted(names) for reason, names in out.items()}

    def summary(self) -> str:
        """One line per reason with the count and up to 10 names (then the noted files, the same way)."""
        lines = [f"{self.corpus}: skipped {len(self)} file(s)"]
        for reason, names in sorted(self.by_reason().items()):
            more = f" (+{len(names) - 10} more)" if len(names) > 10 else ""
            lines.append(f"  {reason}: {len(names)}: {', '.join(names[:10])}{more}")
        remarks = defaultdict(list)
        for name, remark in self.noted.items():
            remarks[remark].append(name)
        for remark, names in sorted(remarks.items()):
            names = sorted(names)
            more = f" (+{len(names) - 10} more)" if len(names) > 10 else ""
            lines.append(f"  kept, {remark}: {len(names)}: {', '.join(names[:10])}{more}")
        return "\n".join(lines)

    def log(self, note: str = "") -> None:
        """Warn with :meth:`summary` (count and names) when anything was skipped; ``note`` is appended to its first
        line."""
        if self.skipped or self.noted:
            summary = self.summary()
            if note:
                first, _, rest = summary.partition("\n")
                summary = f"{first} {note}" + (f"\n{rest}" if rest else "")
            logger.warning(summary)

    def to_dict(self) -> dict:
        """``{"corpus", "skipped": {name: reason}}``, as saved beside the prepared data."""
        out = {"corpus": self.corpus, "skipped": dict(sorted(self.skipped.items()))}
        if self.noted:
            out["noted"] = dict(sorted(self.noted.items()))
        return out

    @classmethod
    def from_dict(cls, data: dict) -> BadDataReport:
        return cls(
            corpus=str(data.get("corpus", "")),
            skipped=dict(data.get("skipped", {})),
            noted=dict(data.get("noted", {})),
        )


#: The remark :func:`~mmder_hf.data.preprocess_to_cache` notes for a clip in which face cropping found no face.
NO_FACE = "no face found (whole frames used)"
#: Reasons :func:`~mmder_hf.data.probing.probe_media` gives for a file that was cut short.
TRUNCATED_MEDIA = "truncated media (its streams end before the duration its container declares)"
TRUNCATED_PACKET = "truncated media (its last packet is incomplete)"
TRUNCATED_WAV = "truncated media (its WAV header declares more audio than the file holds)"


__all__ = [
    "NO_FACE",
    "REPORT_FILENAME",
    "TRUNCATED_MEDIA",
    "TRUNCATED_PACKET",
    "TRUNCATED_WAV",
    "BadDataError",
    "BadDataReport",
]
