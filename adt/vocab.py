"""Drum class vocabularies and the General MIDI note mappings.

5-class vocabulary (thesis, ch. 4): BD (bass drum), SD (snare), TT (toms),
HH (hi-hat), CY (cymbals: crash, ride, china, splash). The 3-class vocabulary
(tatum paper, Sec. III-A) is the BD, SD, HH subset: TT and CY onsets are not
scored in 3-class results.

| GM notes                          | 5-class |
| --------------------------------- | ------- |
| 35, 36                            | BD      |
| 37, 38, 39, 40                    | SD      |
| 41, 43, 45, 47, 48, 50 (and 58)   | TT      |
| 42, 44, 46, 22, 26                | HH      |
| 49, 51, 52, 53, 55, 57, 59        | CY      |

Notes outside this table (cowbell, claves, ...) are dropped. On export each
class is written as one GM note: BD 36, SD 38, TT 47, HH 42, CY 49.
"""

from __future__ import annotations

CLASSES_5: tuple[str, ...] = ("BD", "SD", "TT", "HH", "CY")
CLASSES_3: tuple[str, ...] = ("BD", "SD", "HH")
CLASS_INDEX: dict[str, int] = {c: i for i, c in enumerate(CLASSES_5)}
#: Indices of the 3-class vocabulary inside the 5-class one.
INDEX_3_IN_5: tuple[int, ...] = tuple(CLASS_INDEX[c] for c in CLASSES_3)

#: One GM note per class when writing MIDI.
EXPORT_NOTE: dict[str, int] = {"BD": 36, "SD": 38, "TT": 47, "HH": 42, "CY": 49}

#: GM percussion key map (plus the Roland TD-11 extras used by Groove MIDI:
#: 22 and 26 hi-hat edge, 58 vibraslap which Groove uses as a tom rim).
GM_TO_CLASS: dict[int, str] = {
    35: "BD", 36: "BD",
    37: "SD", 38: "SD", 39: "SD", 40: "SD",
    41: "TT", 43: "TT", 45: "TT", 47: "TT", 48: "TT", 50: "TT", 58: "TT",
    42: "HH", 44: "HH", 46: "HH", 22: "HH", 26: "HH",
    49: "CY", 51: "CY", 52: "CY", 53: "CY", 55: "CY", 57: "CY", 59: "CY",
}


def classes(k: int) -> tuple[str, ...]:
    """The vocabulary with ``k`` classes (3 or 5).

    Raises:
        ValueError: for any other ``k``.
    """
    if k == 5:
        return CLASSES_5
    if k == 3:
        return CLASSES_3
    raise ValueError(f"vocabulary size must be 3 or 5, got {k}")
