/**
 * Active content in a PDF a family uploaded: what can do something when the file is opened, beyond
 * showing pages — the usual vehicles of malicious PDFs (ISO 32000-1 §12.6 actions, §7.11.4 embedded
 * files, §12.7.8 XFA forms; the keys tools such as pdfid look for). Such a file is kept (it may be the
 * family's only copy) but flagged, so the case manager and specialist open it only in a viewer that
 * runs nothing; the API already serves uploads as attachments, never inline.
 *
 * Found by walking every object pdf-lib parsed (object streams included): dictionary keys and the
 * `/S` (action type) and `/Type` names. Stream contents are not decoded: the keys that point at
 * scripts or files sit in dictionaries.
 * @packageDocumentation
 */
import { PDFArray, PDFDict, PDFName, PDFStream, type PDFDocument, type PDFObject } from 'pdf-lib';

/** What a PDF holds that can act when opened, in a fixed order. */
export type ActiveContent = 'JavaScript' | 'launch action' | 'embedded file' | 'rich media' | 'XFA form';

const ORDER: readonly ActiveContent[] = ['JavaScript', 'launch action', 'embedded file', 'rich media', 'XFA form'];

/** Dictionary keys that are active content by themselves. */
const BY_KEY: Readonly<Record<string, ActiveContent>> = {
  '/JS': 'JavaScript',
  '/JavaScript': 'JavaScript',
  '/Launch': 'launch action',
  '/EmbeddedFiles': 'embedded file',
  '/EmbeddedFile': 'embedded file',
  '/RichMedia': 'rich media',
  '/RichMediaContent': 'rich media',
  '/XFA': 'XFA form',
};

/** Values of `/S` (action type) and `/Type` that are. */
const BY_NAME: Readonly<Record<string, ActiveContent>> = {
  '/JavaScript': 'JavaScript',
  '/Launch': 'launch action',
  '/EmbeddedFile': 'embedded file',
  '/RichMedia': 'rich media',
};

/**
 * A PDF name as readers see it (`/JavaScript`): `#` and any two hex digits stand for a byte (ISO
 * 32000-1 §7.3.5). pdf-lib decodes only upper-case hex, so `/#4aavaScript` would pass as another name.
 */
function decodedName(name: PDFName): string {
  const text = name.decodeText();
  return `/${text.includes('#') ? text.replace(/#([0-9a-fA-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))) : text}`;
}

/** Nesting followed inside one object (deeper is not real PDF structure). */
const MAX_DEPTH = 32;

function visit(obj: PDFObject | undefined, found: Set<ActiveContent>, depth: number): void {
  if (obj === undefined || depth > MAX_DEPTH) return;
  const dict = obj instanceof PDFStream ? obj.dict : obj instanceof PDFDict ? obj : undefined;
  if (dict) {
    for (const [key, value] of dict.entries()) {
      const name = decodedName(key);
      const byKey = BY_KEY[name];
      if (byKey) found.add(byKey);
      if ((name === '/S' || name === '/Type') && value instanceof PDFName) {
        const byName = BY_NAME[decodedName(value)];
        if (byName) found.add(byName);
      }
      visit(value, found, depth + 1);
    }
  } else if (obj instanceof PDFArray) {
    for (const item of obj.asArray()) visit(item, found, depth + 1);
  }
}

/** The active content of a loaded PDF (empty for a plain document). Never throws on odd structure. */
export function activeContentOf(doc: PDFDocument): ActiveContent[] {
  const found = new Set<ActiveContent>();
  for (const [, obj] of doc.context.enumerateIndirectObjects()) visit(obj, found, 0);
  return ORDER.filter((a) => found.has(a));
}
