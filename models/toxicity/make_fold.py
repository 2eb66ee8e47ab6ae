"""Writes fold.tsv: the character folding table shared by features.py and
crates/moderation (include_str!). Run once; the output is checked in, so the
two languages read the same table whatever Unicode version each ships."""
import unicodedata

table = {}
# Latin with diacritics, fullwidth ASCII, letter-like symbols: NFKD, drop marks, keep if ASCII.
ranges = [(0x00C0, 0x024F), (0x1E00, 0x1EFF), (0xFF01, 0xFF5E), (0x2100, 0x214F), (0x2460, 0x24FF),
          (0x1D400, 0x1D7FF)]
for lo, hi in ranges:
    for cp in range(lo, hi + 1):
        c = chr(cp)
        d = "".join(x for x in unicodedata.normalize("NFKD", c) if not unicodedata.combining(x)).lower()
        if d and d != c and all(ord(x) < 0x80 for x in d) and d.isalnum():
            table[cp] = d
manual = {
    "ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ł": "l", "ħ": "h", "ı": "i", "ŀ": "l", "þ": "th",
    "ð": "d", "ƒ": "f",
    # Cyrillic and Greek letters that look like Latin ones (lower case: folding runs after lower-casing)
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ɡ": "g", "ո": "n",
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "ω": "w",
}
for k, v in manual.items():
    table[ord(k)] = v
# Invisible characters and combining marks: dropped, so "fu\u200bck" reads "fuck".
for cp in [0x00AD, 0x034F, 0x180E, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0x2061, 0x2062,
           0x2063, 0x2064, 0xFEFF]:
    table[cp] = ""
for lo, hi in [(0x0300, 0x036F), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x20D0, 0x20FF), (0xFE20, 0xFE2F)]:
    for cp in range(lo, hi + 1):
        table[cp] = ""
# Only lower-case keys matter (the text is lower-cased first), but upper-case ones are harmless.
with open("fold.tsv", "w", encoding="utf-8") as f:
    f.write("# code point (hex) TAB replacement; written by make_fold.py\n")
    for cp in sorted(table):
        f.write(f"{cp:04X}\t{table[cp]}\n")
print(len(table), "entries")
