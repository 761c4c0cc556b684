#!/usr/bin/env python3
"""Makes the PDFs' font subsets under assets/fonts/ (opinion report and receipt; run once, the results are committed).

Needs fontTools (Debian: python3-fonttools) and the fonts (Debian: fonts-dejavu-core, fonts-droid-fallback,
fonts-nanum):
    /usr/bin/python3 scripts/subset-report-fonts.py [--cjk-only]
- DejaVu Sans and Sans Bold: Latin (Basic, Latin-1, Extended A/B, Additional), IPA, Greek, Cyrillic,
  punctuation, super- and subscripts (10⁹, SpO₂), currency, letter-like symbols, number forms (⅓ ⅔ ⅛),
  arrows, ballot boxes and check marks (☐ ☑ ✓ ✗): names and text of every European language.
- Droid Sans Fallback: CJK punctuation, kana, the 6,763 Hanzi of GB 2312, the 4,888 Hanja of KS X 1001,
  Big5 level 1 Hanzi, the 6,355 Kanji of JIS X 0208 (levels 1 and 2: 渡辺, 斎藤, 沢, 関 are not in the
  Chinese and Korean sets), half/full-width forms: CJK names. It has no Hangul: its cmap maps 3 of the
  11,172 syllables (가, 힢, 힣), so the KS X 1001 syllables asked of it were silently dropped (fontTools
  subsets what a font has) and Korean printed as "�". Its subset now carries no Hangul syllable at all.
- NanumGothic (as "SOB Hangul"; its OFL Reserved Font Names may not name a modified version): all
  11,172 Hangul syllables (the 2,350 of KS X 1001 and the rest, drawn as composites: ~0.5 MB more),
  compatibility and half-width jamo, parenthesized and circled Hangul: Korean names.
Each font must have every character of its must-have set (checked; the script fails otherwise).

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
NANUM = '/usr/share/fonts/truetype/nanum/NanumGothic.ttf'
HANGUL_NAME = 'SOB Hangul'
OUT = 'assets/fonts'

LATIN = 'U+0020-007E,U+00A0-024F,U+0250-02FF,U+0300-036F,U+0370-03FF,U+0400-052F,U+1E00-1EFF,U+2000-206F,U+2070-209F,U+20A0-20BF,U+2100-214F,U+2150-218F,U+2190-21FF,U+2200-22FF,U+25A0-25FF,U+2610-2612,U+2713-2718,U+FB00-FB06,U+FFFD'


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
    return ''.join(sorted(c for c in chars if ord(c) > 0x2E7F and not is_hangul_syllable(c)))


def is_hangul_syllable(c):
    return 0xAC00 <= ord(c) <= 0xD7A3


def hangul_text():
    """Every Hangul syllable, the compatibility and half-width jamo, parenthesized and circled Hangul (what the font has)."""
    chars = {chr(c) for c in range(0xAC00, 0xD7A4)}
    for start, end in [(0x3131, 0x318E), (0x3200, 0x321E), (0x3260, 0x327F), (0xFFA0, 0xFFDC)]:
        chars.update(chr(c) for c in range(start, end + 1))
    return ''.join(sorted(chars))


def require(font_path, must, what):
    """Fails naming what `font_path` lacks of `must` (fontTools drops a missing character silently)."""
    cmap = TTFont(font_path).getBestCmap()
    missing = [c for c in must if ord(c) not in cmap]
    assert not missing, f'{font_path}: {len(missing)} of the {len(must)} {what} missing, e.g. {"".join(missing[:20])}'
    print(f'{font_path}: all {len(must)} {what}')


def ideographs(text):
    return [c for c in text if 0x4E00 <= ord(c) <= 0x9FFF]


def rename(path, family):
    """Sets the family, full and PostScript names (a modified OFL font may not keep a Reserved Font Name)."""
    font = TTFont(path)
    postscript = family.replace(' ', '') + '-Regular'
    for record in font['name'].names:
        if record.nameID in (1, 16):
            record.string = family
        elif record.nameID in (2, 17):
            record.string = 'Regular'
        elif record.nameID == 3:
            record.string = f'{postscript};subset'
        elif record.nameID == 4:
            record.string = family
        elif record.nameID == 6:
            record.string = postscript
    font['name'].names = [r for r in font['name'].names if r.nameID not in (18, 20, 21, 22)]
    font.save(path)


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
require(f'{OUT}/DroidSansFallback-subset.ttf', ideographs(cjk_text()), 'Hanzi, Hanja and Kanji of GB 2312, KS X 1001, Big5 level 1 and JIS X 0208')
with open('/tmp/hangul-chars.txt', 'w', encoding='utf-8') as f:
    f.write(hangul_text())
subset(NANUM, f'{OUT}/SOBHangul-subset.ttf', ['--text-file=/tmp/hangul-chars.txt'])
rename(f'{OUT}/SOBHangul-subset.ttf', HANGUL_NAME)
require(f'{OUT}/SOBHangul-subset.ttf', [chr(c) for c in [*range(0xAC00, 0xD7A4), *range(0x3131, 0x3164)]], 'Hangul syllables and jamo')
