#!/usr/bin/env python3
"""Makes the PDFs' font subsets under assets/fonts/ (opinion report and receipt; run once, the results are committed).

Needs fontTools (Debian: python3-fonttools) and the fonts (Debian: fonts-dejavu-core, fonts-droid-fallback):
    /usr/bin/python3 scripts/subset-report-fonts.py [--cjk-only]
- DejaVu Sans and Sans Bold: Latin (Basic, Latin-1, Extended A/B, Additional), IPA, Greek, Cyrillic,
  punctuation, currency, letter-like symbols and arrows: names and text of every European language.
- Droid Sans Fallback: CJK punctuation, kana, the 6,763 Hanzi of GB 2312, the 2,350 Hangul syllables
  and 4,888 Hanja of KS X 1001, Big5 level 1 Hanzi, the 6,355 Kanji of JIS X 0208 (levels 1 and 2:
  渡辺, 斎藤, 沢, 関 are not in the Chinese and Korean sets), half/full-width forms: CJK names.

Every glyph record in 'glyf' is padded to 4 bytes (as in the upstream fonts). fontTools by default
writes records of odd length, and the service subsets these files again per PDF with pdf-lib's
fontkit, whose TrueType subsetter concatenates records unpadded and then writes a short 'loca'
(offsets halved) when the result is under 64 KB: odd offsets are truncated and viewers draw blanks.
src/report/report-fonts.ts checks this (a font with odd records is embedded whole instead).
"""
import subprocess
import sys

from fontTools.ttLib import TTFont

DEJAVU = '/usr/share/fonts/truetype/dejavu'
DROID = '/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf'
OUT = 'assets/fonts'

LATIN = 'U+0020-007E,U+00A0-024F,U+0250-02FF,U+0300-036F,U+0370-03FF,U+0400-052F,U+1E00-1EFF,U+2000-206F,U+20A0-20BF,U+2100-214F,U+2190-21FF,U+2200-22FF,U+25A0-25FF,U+FB00-FB06,U+FFFD'


def decoded(encoding, leads, trails):
    chars = set()
    for lead in leads:
        for trail in trails:
            try:
                chars.update(bytes([lead, trail]).decode(encoding))
            except UnicodeDecodeError:
                pass
    return chars


def cjk_text():
    chars = set()
    chars |= decoded('gb2312', range(0xA1, 0xF8), range(0xA1, 0xFF))
    chars |= decoded('euc-kr', range(0xA1, 0xFE), range(0xA1, 0xFF))
    chars |= decoded('big5', range(0xA4, 0xC7), list(range(0x40, 0x7F)) + list(range(0xA1, 0xFF)))
    chars |= decoded('euc-jp', range(0xB0, 0xF5), range(0xA1, 0xFF))
    for start, end in [(0x3000, 0x30FF), (0x31F0, 0x31FF), (0xFF00, 0xFFEF)]:
        chars.update(chr(c) for c in range(start, end + 1))
    return ''.join(sorted(c for c in chars if ord(c) > 0x2E7F))


def subset(src, dst, args):
    subprocess.run([sys.executable, '-m', 'fontTools.subset', src, f'--output-file={dst}', '--layout-features=kern',
                    '--no-hinting', '--desubroutinize', '--name-IDs=*', '--name-legacy', '--name-languages=*', *args], check=True)
    font = TTFont(dst)
    font['glyf'].padding = 4  # 4-byte glyph records (see above); loca is rewritten to match
    font.save(dst)
    offsets = TTFont(dst)['loca'].locations
    assert all(o % 4 == 0 for o in offsets), f'{dst}: unpadded glyph records'


if '--cjk-only' not in sys.argv:
    subset(f'{DEJAVU}/DejaVuSans.ttf', f'{OUT}/DejaVuSans-subset.ttf', [f'--unicodes={LATIN}'])
    subset(f'{DEJAVU}/DejaVuSans-Bold.ttf', f'{OUT}/DejaVuSans-Bold-subset.ttf', [f'--unicodes={LATIN}'])
with open('/tmp/cjk-chars.txt', 'w', encoding='utf-8') as f:
    f.write(cjk_text())
subset(DROID, f'{OUT}/DroidSansFallback-subset.ttf', ['--text-file=/tmp/cjk-chars.txt'])
