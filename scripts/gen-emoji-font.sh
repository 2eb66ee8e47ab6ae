#!/usr/bin/env bash
# Writes web-ui/src/fonts/spaces-emoji.ttf: the emoji the client offers as
# quick reactions and uses most, cut out of Debian's Noto Color Emoji (SIL
# Open Font License) with fontTools' subsetter from PyPI. The client lists
# it after the system's emoji fonts, so a browser downloads it only on a
# machine that has none. Run by hand when the set changes (the output is
# committed): needs `apt-get install fonts-noto-color-emoji`.
set -euo pipefail
cd "$(dirname "$0")/.."
font=/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
[ -f "$font" ] || { echo "gen-emoji-font: $font missing (apt-get install fonts-noto-color-emoji)" >&2; exit 1; }
venv=${CARGO_TARGET_DIR:-target}/emoji-font-venv
[ -x "$venv/bin/pyftsubset" ] || {
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'fonttools==4.*'
}
# The quick reactions (src/ui/Message.tsx, QUICK_REACTIONS), then common ones.
text='👍❤😂🎉😮😢🙏👀🔥✅👋👏💯😄🐝🌻'
"$venv/bin/pyftsubset" "$font" --text="$text" --output-file=web-ui/src/fonts/spaces-emoji.ttf
ls -l web-ui/src/fonts/spaces-emoji.ttf
