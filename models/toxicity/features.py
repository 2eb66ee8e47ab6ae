"""Text normaliser and hashed n-gram features for the toxicity model.

This file is the reference: crates/moderation/src/features.rs does exactly the
same, and `train.py` writes test vectors (data/vectors.tsv) that the Rust unit
tests compare against, so the two can never drift apart silently.

Steps (FEATURE_VERSION 1):
1. Lower-case, then fold each character through fold.tsv (accents, fullwidth
   forms, Cyrillic/Greek look-alikes -> ASCII; zero-width characters and
   combining marks -> nothing).
2. Split into raw tokens: runs of word characters (ASCII letters and digits,
   any non-ASCII alphabetic character) and the look-alike symbols @ $ ! | *.
   Leading and trailing ! | * are stripped (so "you!" stays "you").
3. A token with at least one letter has its look-alikes read as letters
   (0->o 1->i 3->e 4->a 5->s 7->t @->a $->s !->i |->i); then every character
   but word characters and * is dropped.
4. Runs of three or more identical characters become two ("fuuuuck" -> "fuuck").
5. Three or more one-character tokens in a row, each separated by at most two
   characters, are also emitted joined ("f u c k" -> "fuck", "k.y.s" -> "kys").
Features: "w:" + token, "b:" + token + " " + next token, "s:" + token + " " +
the token after next (a skip bigram: "kill ... you"), and character 3- to
5-grams of "<" + token + ">" prefixed "c:". Each distinct feature is hashed
(FNV-1a, 32 bit, over its UTF-8 bytes) modulo HASH_DIM; all get the weight
1/sqrt(number of distinct ids) (binary features, L2-normalised).
"""

import math
import os

FEATURE_VERSION = 1
HASH_DIM = 1 << 15
MAX_CHARS = 2000  # longer messages are scored on their first 2000 characters
LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "|": "i"}
SYMBOLS = set("@$!|*")
EDGE_STRIP = "!|*"

_HERE = os.path.dirname(os.path.abspath(__file__))


def load_fold(path=os.path.join(_HERE, "fold.tsv")):
    table = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip("\n"):
                continue
            cp, repl = line.rstrip("\n").split("\t")
            table[chr(int(cp, 16))] = repl
    return table


FOLD = load_fold() if os.path.exists(os.path.join(_HERE, "fold.tsv")) else {}


def is_word(c):
    return ("a" <= c <= "z") or ("A" <= c <= "Z") or ("0" <= c <= "9") or (ord(c) >= 0x80 and c.isalpha())


def has_letter(tok):
    return any(c.isalpha() for c in tok)


def collapse(tok):
    out = []
    for c in tok:
        if len(out) >= 2 and out[-1] == c and out[-2] == c:
            continue
        out.append(c)
    return "".join(out)


def tokens(text):
    text = text[:MAX_CHARS]
    folded = "".join(FOLD.get(c, c) for c in text.lower())
    # raw tokens with the separator length before each
    raw = []  # (token, gap_before)
    cur = []
    gap = 0
    for c in folded:
        if is_word(c) or c in SYMBOLS:
            cur.append(c)
        else:
            if cur:
                raw.append(("".join(cur), gap))
                cur = []
                gap = 0
            gap += 1
    if cur:
        raw.append(("".join(cur), gap))
    out = []  # (token, gap_before)
    for tok, g in raw:
        tok = tok.strip(EDGE_STRIP)
        if has_letter(tok):
            tok = "".join(LEET.get(c, c) for c in tok)
        tok = "".join(c for c in tok if is_word(c) or c == "*")
        tok = collapse(tok)
        if tok:
            out.append((tok, g))
        # an emptied token is dropped, and its characters count toward no gap
    toks = [t for t, _ in out]
    # join runs of one-character tokens
    joined = []
    i = 0
    while i < len(out):
        if len(out[i][0]) == 1:
            j = i + 1
            while j < len(out) and len(out[j][0]) == 1 and out[j][1] <= 2:
                j += 1
            if j - i >= 3:
                joined.append(collapse("".join(t for t, _ in out[i:j])))
            i = j
        else:
            i += 1
    return toks, joined


def fnv1a(s):
    h = 0x811C9DC5
    for b in s.encode("utf-8"):
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def feature_strings(text):
    toks, joined = tokens(text)
    feats = []
    for t in toks + joined:
        feats.append("w:" + t)
        padded = "<" + t + ">"
        chars = list(padded)
        for n in (3, 4, 5):
            for k in range(0, len(chars) - n + 1):
                feats.append("c:" + "".join(chars[k:k + n]))
    for a, b in zip(toks, toks[1:]):
        feats.append("b:" + a + " " + b)
    for a, b in zip(toks, toks[2:]):
        feats.append("s:" + a + " " + b)
    return feats


def features(text):
    """Sorted distinct hashed ids and their common weight."""
    ids = sorted({fnv1a(f) % HASH_DIM for f in feature_strings(text)})
    if not ids:
        return [], 0.0
    return ids, 1.0 / math.sqrt(len(ids))
