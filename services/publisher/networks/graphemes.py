"""Extended grapheme clusters (Unicode's UAX #29), the unit both networks count a post in.

Mastodon counts `each_grapheme_cluster` (Ruby) and Bluesky's PDS counts with the `graphemer`
segmenter: both implement the extended clusters of UAX #29 without the Indic conjunct rule
(GB9c), and so does this module. The property of each code point comes from `unicodedata`
(the Unicode version of this Python) and the few tables it does not carry: a code point that
is new in a later Unicode version counts as one grapheme on its own until Python learns it.
"""

from __future__ import annotations

import bisect
import unicodedata
from collections.abc import Iterator
from enum import Enum
from functools import lru_cache


class Break(Enum):
    """The Grapheme_Cluster_Break property, plus Extended_Pictographic for rule GB11."""

    OTHER = "Other"
    CR = "CR"
    LF = "LF"
    CONTROL = "Control"
    EXTEND = "Extend"
    ZWJ = "ZWJ"
    REGIONAL_INDICATOR = "Regional_Indicator"
    PREPEND = "Prepend"
    SPACING_MARK = "SpacingMark"
    L = "L"
    V = "V"
    T = "T"
    LV = "LV"
    LVT = "LVT"
    PICTOGRAPHIC = "Extended_Pictographic"


def _table(ranges: tuple[tuple[int, int], ...]) -> tuple[list[int], list[int]]:
    return [start for start, _ in ranges], [end for _, end in ranges]


# emoji-data.txt's Extended_Pictographic (Unicode 14), which unicodedata does not expose.
_PICTOGRAPHIC = _table(
    (
        (0xA9, 0xA9), (0xAE, 0xAE), (0x203C, 0x203C), (0x2049, 0x2049), (0x2122, 0x2122),
        (0x2139, 0x2139), (0x2194, 0x2199), (0x21A9, 0x21AA), (0x231A, 0x231B), (0x2328, 0x2328),
        (0x2388, 0x2388), (0x23CF, 0x23CF), (0x23E9, 0x23F3), (0x23F8, 0x23FA), (0x24C2, 0x24C2),
        (0x25AA, 0x25AB), (0x25B6, 0x25B6), (0x25C0, 0x25C0), (0x25FB, 0x25FE), (0x2600, 0x2605),
        (0x2607, 0x2612), (0x2614, 0x2685), (0x2690, 0x2705), (0x2708, 0x2712), (0x2714, 0x2714),
        (0x2716, 0x2716), (0x271D, 0x271D), (0x2721, 0x2721), (0x2728, 0x2728), (0x2733, 0x2734),
        (0x2744, 0x2744), (0x2747, 0x2747), (0x274C, 0x274C), (0x274E, 0x274E), (0x2753, 0x2755),
        (0x2757, 0x2757), (0x2763, 0x2767), (0x2795, 0x2797), (0x27A1, 0x27A1), (0x27B0, 0x27B0),
        (0x27BF, 0x27BF), (0x2934, 0x2935), (0x2B05, 0x2B07), (0x2B1B, 0x2B1C), (0x2B50, 0x2B50),
        (0x2B55, 0x2B55), (0x3030, 0x3030), (0x303D, 0x303D), (0x3297, 0x3297), (0x3299, 0x3299),
        (0x1F000, 0x1F0FF), (0x1F10D, 0x1F10F), (0x1F12F, 0x1F12F), (0x1F16C, 0x1F171),
        (0x1F17E, 0x1F17F), (0x1F18E, 0x1F18E), (0x1F191, 0x1F19A), (0x1F1AD, 0x1F1E5),
        (0x1F201, 0x1F20F), (0x1F21A, 0x1F21A), (0x1F22F, 0x1F22F), (0x1F232, 0x1F23A),
        (0x1F23C, 0x1F23F), (0x1F249, 0x1F3FA), (0x1F400, 0x1F53D), (0x1F546, 0x1F64F),
        (0x1F680, 0x1F6FF), (0x1F774, 0x1F77F), (0x1F7D5, 0x1F7FF), (0x1F80C, 0x1F80F),
        (0x1F848, 0x1F84F), (0x1F85A, 0x1F85F), (0x1F888, 0x1F88F), (0x1F8AE, 0x1F8FF),
        (0x1F90C, 0x1F93A), (0x1F93C, 0x1F945), (0x1F947, 0x1FAFF), (0x1FC00, 0x1FFFD),
    )
)  # fmt: skip
# Other_Grapheme_Extend: spacing vowel signs and the like that still extend (Extend, not
# SpacingMark), ZWNJ, halfwidth sound marks and the tag characters of flag sequences.
_OTHER_EXTEND = _table(
    (
        (0x9BE, 0x9BE), (0x9D7, 0x9D7), (0xB3E, 0xB3E), (0xB57, 0xB57), (0xBBE, 0xBBE),
        (0xBD7, 0xBD7), (0xCC2, 0xCC2), (0xCD5, 0xCD6), (0xD3E, 0xD3E), (0xD57, 0xD57),
        (0xDCF, 0xDCF), (0xDDF, 0xDDF), (0x1B35, 0x1B35), (0x200C, 0x200C), (0x302E, 0x302F),
        (0xFF9E, 0xFF9F), (0x1133E, 0x1133E), (0x11357, 0x11357), (0x114B0, 0x114B0),
        (0x114BD, 0x114BD), (0x115AF, 0x115AF), (0x11930, 0x11930), (0x1D165, 0x1D165),
        (0x1D16E, 0x1D172), (0xE0020, 0xE007F),
    )
)  # fmt: skip
# Spacing combining marks (Mc) UAX #29 leaves out of SpacingMark: Myanmar and Tai Tham
# vowels that stand as their own cluster.
_NOT_SPACING = _table(
    (
        (0x102B, 0x102C), (0x1038, 0x1038), (0x1062, 0x1064), (0x1067, 0x106D), (0x1083, 0x1083),
        (0x1087, 0x108C), (0x108F, 0x108F), (0x109A, 0x109C), (0x1A61, 0x1A61), (0x1A63, 0x1A64),
        (0xAA7B, 0xAA7B), (0xAA7D, 0xAA7D), (0x11720, 0x11721),
    )
)  # fmt: skip
_PREPEND = _table(
    (
        (0x600, 0x605), (0x6DD, 0x6DD), (0x70F, 0x70F), (0x890, 0x891), (0x8E2, 0x8E2),
        (0xD4E, 0xD4E), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x111C2, 0x111C3),
        (0x1193F, 0x1193F), (0x11941, 0x11941), (0x11A3A, 0x11A3A), (0x11A84, 0x11A89),
        (0x11D46, 0x11D46),
    )
)  # fmt: skip
# Unassigned code points that are Default_Ignorable: Control, as if they were format marks.
_IGNORABLE_UNASSIGNED = _table(((0x2065, 0x2065), (0xFFF0, 0xFFF8), (0xE0000, 0xE0FFF)))
_HANGUL = {
    Break.L: _table(((0x1100, 0x115F), (0xA960, 0xA97C))),
    Break.V: _table(((0x1160, 0x11A7), (0xD7B0, 0xD7C6))),
    Break.T: _table(((0x11A8, 0x11FF), (0xD7CB, 0xD7FB))),
}
_SYLLABLES = range(0xAC00, 0xD7A4)
_JAMO_T_COUNT = 28
_MODIFIERS = range(0x1F3FB, 0x1F400)
_REGIONAL = range(0x1F1E6, 0x1F200)


def _within(table: tuple[list[int], list[int]], code: int) -> bool:
    starts, ends = table
    index = bisect.bisect_right(starts, code) - 1
    return index >= 0 and code <= ends[index]


@lru_cache(maxsize=4096)
def category(char: str) -> Break:
    """The grapheme-break class of one code point."""
    code = ord(char)
    if code == 0x0D:
        return Break.CR
    if code == 0x0A:
        return Break.LF
    if code == 0x200D:
        return Break.ZWJ
    if code in _REGIONAL:
        return Break.REGIONAL_INDICATOR
    if code in _SYLLABLES:
        return Break.LV if (code - _SYLLABLES.start) % _JAMO_T_COUNT == 0 else Break.LVT
    for kind, table in _HANGUL.items():
        if _within(table, code):
            return kind
    if _within(_PREPEND, code):
        return Break.PREPEND
    general = unicodedata.category(char)
    if general in ("Mn", "Me") or code in _MODIFIERS or _within(_OTHER_EXTEND, code):
        return Break.EXTEND
    if general == "Mc":
        return Break.OTHER if _within(_NOT_SPACING, code) else Break.SPACING_MARK
    if code in (0x0E33, 0x0EB3):  # Thai and Lao SARA AM: letters that join as marks
        return Break.SPACING_MARK
    if general in ("Cc", "Cf", "Zl", "Zp", "Cs"):
        return Break.CONTROL
    if general == "Cn" and _within(_IGNORABLE_UNASSIGNED, code):
        return Break.CONTROL
    if _within(_PICTOGRAPHIC, code):
        return Break.PICTOGRAPHIC
    return Break.OTHER


_CONTROLS = frozenset({Break.CONTROL, Break.CR, Break.LF})
_L_FOLLOWERS = frozenset({Break.L, Break.V, Break.LV, Break.LVT})


def _joins(before: Break, after: Break, *, emoji_zwj: bool, odd_regional: bool) -> bool:
    """Whether no boundary falls between `before` and `after` (rules GB3 to GB13)."""
    if before is Break.CR and after is Break.LF:  # GB3
        return True
    if before in _CONTROLS or after in _CONTROLS:  # GB4, GB5
        return False
    if before is Break.L and after in _L_FOLLOWERS:  # GB6
        return True
    if before in (Break.LV, Break.V) and after in (Break.V, Break.T):  # GB7
        return True
    if before in (Break.LVT, Break.T) and after is Break.T:  # GB8
        return True
    if after in (Break.EXTEND, Break.ZWJ, Break.SPACING_MARK):  # GB9, GB9a
        return True
    if before is Break.PREPEND:  # GB9b
        return True
    if emoji_zwj and after is Break.PICTOGRAPHIC:  # GB11
        return True
    # GB12, GB13: flags are pairs of regional indicators.
    return before is Break.REGIONAL_INDICATOR and after is Break.REGIONAL_INDICATOR and odd_regional


def clusters(text: str) -> Iterator[str]:
    """Yield the extended grapheme clusters of `text`, in order."""
    start = 0
    previous: Break | None = None
    # GB11: inside "pictograph Extend*", and whether the last code point was its ZWJ.
    in_emoji = False
    emoji_zwj = False
    regional_run = 0
    for index, char in enumerate(text):
        current = category(char)
        if previous is not None and not _joins(
            previous, current, emoji_zwj=emoji_zwj, odd_regional=regional_run % 2 == 1
        ):
            yield text[start:index]
            start = index
        emoji_zwj = in_emoji and current is Break.ZWJ
        if current is Break.PICTOGRAPHIC:
            in_emoji = True
        elif current is not Break.EXTEND:
            in_emoji = False
        regional_run = regional_run + 1 if current is Break.REGIONAL_INDICATOR else 0
        previous = current
    if start < len(text):
        yield text[start:]


def count(text: str) -> int:
    """The number of extended grapheme clusters in `text`."""
    return sum(1 for _ in clusters(text))
