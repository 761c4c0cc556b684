/**
 * Whether a FHIR narrative (`Narrative.div`) may be passed on as sent: one strict, single-pass
 * tokenizer over the XHTML string (no DOM, no dependency), checking the allow-list of the R4
 * invariants txt-1 and txt-2 and the content the narrative page forbids.
 *
 * Allowed (txt-1, the element and attribute lists of the R4 StructureDefinition of Narrative.div):
 * - elements `a abbr acronym b big blockquote br caption cite code col colgroup dd dfn div dl dt em
 *   h1–h6 hr i img li ol p pre q samp small span strong sub sup table tbody td tfoot th thead tr tt
 *   ul var`, written in lower case (XHTML names are case-sensitive), so no `script`, `style`,
 *   `iframe`, `object`, `embed`, `form`, `base`, `link`, `meta`, `svg`, `math`…;
 * - attributes `abbr accesskey align alt axis bgcolor border cellhalign cellpadding cellspacing
 *   cellvalign char charoff charset cite class colspan compact coords dir frame headers height href
 *   hreflang hspace id lang longdesc name nowrap rel rev rowspan rules scope shape span src start
 *   style summary tabindex title type valign value vspace width`, plus `xml:lang`, and `xmlns` only
 *   with the XHTML namespace (no other namespace, no prefix declarations, no `xlink:`), so no `on*`
 *   event handler;
 * - URLs (`href`, `cite`, `longdesc`) relative or with the scheme `http`, `https`, `mailto`, `tel`
 *   or `urn` (no `javascript:`, `vbscript:`, `data:`…); an image `src` only `#…` (a contained
 *   resource) or `data:` (no external reference); checked after character references are decoded and
 *   ASCII whitespace and control characters removed (`jav&#x61;script:`, `java&#9;script:`), and
 *   any named reference but the five of XML (HTML's `&colon;`) is refused in them;
 * - `style` without `url(`, `expression`, `javascript`, `@import`, `behavior`, `binding`, CSS escapes
 *   (`\`) or comments (`/*`), so it cannot load anything or hide a word;
 * - comments whose text holds no `<`, `>` or `--`; no CDATA section, DOCTYPE or processing
 *   instruction (HTML and XML parsers read those differently: the classic way to smuggle a script
 *   past an XML check).
 *
 * Structure: one root `<div>` in the XHTML namespace (required in JSON), nothing but whitespace
 * around it, attribute values quoted and free of `<`, every element closed in order (`<br/>`), and
 * (txt-2) some non-whitespace text or an `<img src>`. Text content is not decoded: whatever it
 * holds is text (`&lt;script&gt;` stays text for every parser).
 *
 * Cost: linear, `indexOf` between tags, names looked up in place (no string cut out per tag); about
 * 1–2 µs for a generated narrative of 250–400 characters (Synthea, Inferno) on the development VM,
 * and only resources that have a narrative pay it.
 * @see https://hl7.org/fhir/R4/narrative.html#Narrative
 * @see https://hl7.org/fhir/R4/narrative-definitions.html#Narrative.div
 * @see https://hl7.org/fhir/R4/json.html#xhtml
 * @packageDocumentation
 */

/** The XHTML namespace, which the narrative's root div must declare. */
export const XHTML_NAMESPACE = 'http://www.w3.org/1999/xhtml';

const ELEMENT_NAMES = [
  'a', 'abbr', 'acronym', 'b', 'big', 'blockquote', 'br', 'caption', 'cite', 'code', 'col', 'colgroup', 'dd', 'dfn', 'div', 'dl', 'dt', 'em',
  'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'i', 'img', 'li', 'ol', 'p', 'pre', 'q', 'samp', 'small', 'span', 'strong', 'sub', 'sup', 'table',
  'tbody', 'td', 'tfoot', 'th', 'thead', 'tr', 'tt', 'ul', 'var',
];

const ATTRIBUTE_NAMES = [
  'abbr', 'accesskey', 'align', 'alt', 'axis', 'bgcolor', 'border', 'cellhalign', 'cellpadding', 'cellspacing', 'cellvalign', 'char', 'charoff',
  'charset', 'cite', 'class', 'colspan', 'compact', 'coords', 'dir', 'frame', 'headers', 'height', 'href', 'hreflang', 'hspace', 'id', 'lang',
  'longdesc', 'name', 'nowrap', 'rel', 'rev', 'rowspan', 'rules', 'scope', 'shape', 'span', 'src', 'start', 'style', 'summary', 'tabindex',
  'title', 'type', 'valign', 'value', 'vspace', 'width', 'xml:lang', 'xmlns',
];

/**
 * Names by first character and length: a name in the string is looked up where it stands, without
 * cutting it out (a fresh string would be allocated and hashed for every tag and attribute).
 */
type NameTable = readonly (readonly string[] | undefined)[];

function nameTable(names: readonly string[]): NameTable {
  const table: string[][] = [];
  for (const name of names) (table[(name.charCodeAt(0) << 4) | name.length] ??= []).push(name);
  return table;
}

/** The name of `table` written at `s[from, to)`, or undefined. */
function lookup(table: NameTable, s: string, from: number, to: number): string | undefined {
  const length = to - from;
  const c = s.charCodeAt(from);
  if (length > 15 || c > 0x7f) return undefined;
  const candidates = table[(c << 4) | length];
  if (candidates) for (const name of candidates) if (s.startsWith(name, from)) return name;
  return undefined;
}

const ELEMENTS = nameTable(ELEMENT_NAMES);
const ATTRIBUTES = nameTable(ATTRIBUTE_NAMES);

/** Attributes holding a link (checked by {@link linkProblem}); `src` has its own rule. */
const LINK_ATTRIBUTES: ReadonlySet<string> = new Set(['href', 'cite', 'longdesc']);
const LINK_SCHEMES: ReadonlySet<string> = new Set(['http', 'https', 'mailto', 'tel', 'urn']);
const STYLE_FORBIDDEN = ['url(', 'expression', 'javascript', '@import', 'behavior', 'binding', '\\', '/*'] as const;
const XML_ENTITIES: ReadonlyMap<string, string> = new Map([['amp', '&'], ['lt', '<'], ['gt', '>'], ['quot', '"'], ['apos', "'"]]);
const REFERENCE = /&(?:#x([0-9a-fA-F]{1,6});|#([0-9]{1,7});|([A-Za-z][A-Za-z0-9]*);)|&/g;
const SCHEME = /^([a-z][a-z0-9+.-]*):/;
/** ASCII whitespace and control characters: browsers drop tabs and newlines inside URLs, and C0 around them. */
const URL_IGNORED = /[\u0000-\u0020\u007f]+/g;
const SHOWN_NAME = /^[A-Za-z_][\w:.-]{0,39}$/;

/** A name for a message (the source's text is not echoed when odd or long). */
function shown(name: string): string {
  return SHOWN_NAME.test(name) ? name : '(an unreadable name)';
}

function isXmlSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/** Name characters of XML tags and attributes (ASCII subset: an allowed name is ASCII anyway). */
function isNameChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x3a || c === 0x5f;
}

function hasContent(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (!isXmlSpace(s.charCodeAt(i))) return true;
  return false;
}

/** An attribute value with its character references decoded; undefined when it has another named one or a bare `&`. */
function decoded(value: string): string | undefined {
  if (!value.includes('&')) return value;
  let bad = false;
  const out = value.replace(REFERENCE, (whole, hex: string | undefined, dec: string | undefined, name: string | undefined) => {
    if (hex !== undefined || dec !== undefined) {
      const cp = hex !== undefined ? parseInt(hex, 16) : Number(dec);
      if (cp > 0x10ffff) {
        bad = true;
        return '';
      }
      return String.fromCodePoint(cp);
    }
    const known = name !== undefined ? XML_ENTITIES.get(name) : undefined;
    if (known === undefined) bad = true;
    return known ?? whole;
  });
  return bad ? undefined : out;
}

/** Why a link attribute is refused, or undefined. */
function linkProblem(name: string, value: string): string | undefined {
  const url = decoded(value);
  if (url === undefined) return `attribute ${name} uses a character reference other than &amp; &lt; &gt; &quot; &apos; or a numeric one`;
  const scheme = SCHEME.exec(url.replace(URL_IGNORED, '').toLowerCase())?.[1];
  if (scheme !== undefined && !LINK_SCHEMES.has(scheme)) return `attribute ${name} uses the URL scheme ${shown(scheme)}:`;
  return undefined;
}

/** Why an image source is refused (only `#…` and `data:`), or undefined. */
function srcProblem(value: string): string | undefined {
  const url = decoded(value);
  if (url === undefined) return 'attribute src uses a character reference other than &amp; &lt; &gt; &quot; &apos; or a numeric one';
  const bare = url.replace(URL_IGNORED, '').toLowerCase();
  return bare.startsWith('#') || bare.startsWith('data:') ? undefined : 'attribute src refers to an external image (only data: and #… are allowed)';
}

function styleProblem(value: string): string | undefined {
  const css = decoded(value)?.toLowerCase();
  if (css === undefined) return 'attribute style uses a character reference other than &amp; &lt; &gt; &quot; &apos; or a numeric one';
  for (const word of STYLE_FORBIDDEN) if (css.includes(word)) return `attribute style contains "${word}"`;
  return undefined;
}

/** Why an attribute that is not on the allow-list is refused. */
function unknownAttribute(element: string, name: string): string {
  if (name.length > 2 && (name.charCodeAt(0) | 0x20) === 0x6f && (name.charCodeAt(1) | 0x20) === 0x6e) return `element ${element} has the event handler attribute ${shown(name)}`;
  return `element ${element} has the attribute ${shown(name)}, which narrative does not allow`;
}

/** Why allowed attribute `name` of `element`, valued `div[from, to)`, is refused, or undefined (the value is only cut out when checked). */
function attributeProblem(element: string, name: string, div: string, from: number, to: number): string | undefined {
  if (name === 'xmlns') {
    return to - from === XHTML_NAMESPACE.length && div.startsWith(XHTML_NAMESPACE, from) ? undefined : `element ${element} declares a namespace other than XHTML`;
  }
  if (LINK_ATTRIBUTES.has(name)) return linkProblem(name, div.slice(from, to));
  if (name === 'src') return srcProblem(div.slice(from, to));
  if (name === 'style') return styleProblem(div.slice(from, to));
  return undefined;
}

/** A parsed start tag, or why it is refused. */
type StartTag = { readonly end: number; readonly name: string; readonly selfClosing: boolean; readonly xhtml: boolean; readonly imageSource: boolean } | { readonly problem: string };

/** Reads the start tag at `lt` (`div[lt] === '<'`, followed by a name character). */
function startTag(div: string, lt: number): StartTag {
  const n = div.length;
  let i = lt + 1;
  while (i < n && isNameChar(div.charCodeAt(i))) i++;
  const name = lookup(ELEMENTS, div, lt + 1, i);
  if (name === undefined) return { problem: `element ${shown(div.slice(lt + 1, i))} is not allowed in narrative` };
  let xhtml = false;
  let imageSource = false;
  for (;;) {
    const before = i;
    while (i < n && isXmlSpace(div.charCodeAt(i))) i++;
    const c = div.charCodeAt(i);
    if (c === 0x3e) return { end: i + 1, name, selfClosing: false, xhtml, imageSource };
    if (c === 0x2f && div.charCodeAt(i + 1) === 0x3e) return { end: i + 2, name, selfClosing: true, xhtml, imageSource };
    if (i >= n) return { problem: `element ${name} is not closed by ">"` };
    if (i === before) return { problem: `element ${name} has a malformed attribute list` };
    const nameStart = i;
    while (i < n && isNameChar(div.charCodeAt(i))) i++;
    const nameEnd = i;
    while (i < n && isXmlSpace(div.charCodeAt(i))) i++;
    if (nameEnd === nameStart || div.charCodeAt(i) !== 0x3d) return { problem: `element ${name} has a malformed attribute` };
    const attr = lookup(ATTRIBUTES, div, nameStart, nameEnd);
    if (attr === undefined) return { problem: unknownAttribute(name, div.slice(nameStart, nameEnd)) };
    i++;
    while (i < n && isXmlSpace(div.charCodeAt(i))) i++;
    const quote = div.charCodeAt(i);
    if (quote !== 0x22 && quote !== 0x27) return { problem: `attribute ${attr} of element ${name} is not quoted` };
    const close = div.indexOf(quote === 0x22 ? '"' : "'", i + 1);
    if (close < 0) return { problem: `attribute ${attr} of element ${name} is not closed` };
    const lessThan = div.indexOf('<', i + 1);
    if (lessThan >= 0 && lessThan < close) return { problem: `attribute ${attr} of element ${name} contains "<"` };
    const problem = attributeProblem(name, attr, div, i + 1, close);
    if (problem !== undefined) return { problem };
    if (attr === 'xmlns') xhtml = true;
    else if (attr === 'src' && name === 'img' && close > i + 1) imageSource = true;
    i = close + 1;
  }
}

/** Why the comment at `lt` is refused, or its end. */
function comment(div: string, lt: number): number | string {
  if (!div.startsWith('<!--', lt)) return div.startsWith('<![CDATA[', lt) ? 'a CDATA section' : 'a DOCTYPE or other declaration';
  const close = div.indexOf('-->', lt + 4);
  if (close < 0) return 'an unclosed comment';
  const body = div.slice(lt + 4, close);
  if (body.includes('--') || body.includes('<') || body.includes('>') || body.endsWith('-')) return 'a comment holding "<", ">" or "--"';
  return close + 3;
}

/**
 * Why `div` may not be passed on as a FHIR narrative (txt-1, txt-2, and the narrative page's
 * prohibitions; see the module comment), or undefined when it may, unchanged.
 */
export function narrativeProblem(div: string): string | undefined {
  const n = div.length;
  const open: string[] = [];
  let rootSeen = false;
  let rootClosed = false;
  let content = false;
  let i = 0;
  while (i < n) {
    const lt = div.indexOf('<', i);
    const textEnd = lt < 0 ? n : lt;
    // Text is only scanned while it matters: outside the root, or until some content was seen.
    if (i < textEnd && (!content || open.length === 0) && hasContent(div, i, textEnd)) {
      if (open.length === 0) return 'text outside the root div';
      content = true;
    }
    if (lt < 0) break;
    const c = div.charCodeAt(lt + 1);
    if (c === 0x21) {
      const end = comment(div, lt);
      if (typeof end === 'string') return end;
      i = end;
      continue;
    }
    if (rootClosed) return 'markup after the root div';
    if (c === 0x2f) {
      const gt = div.indexOf('>', lt + 2);
      if (gt < 0) return 'an end tag not closed by ">"';
      let nameEnd = lt + 2;
      while (nameEnd < gt && isNameChar(div.charCodeAt(nameEnd))) nameEnd++;
      const expected = open.pop();
      // Compared in place: no string is cut out for an end tag that matches.
      if (expected === undefined || nameEnd - lt - 2 !== expected.length || !div.startsWith(expected, lt + 2)) {
        const name = shown(div.slice(lt + 2, nameEnd));
        return expected === undefined ? `an end tag of ${name} that closes nothing` : `the end tag of ${name} closes ${expected}`;
      }
      if (hasContent(div, nameEnd, gt)) return `a malformed end tag of ${expected}`;
      if (open.length === 0) rootClosed = true;
      i = gt + 1;
      continue;
    }
    if (c === 0x3f) return 'a processing instruction';
    if (!isNameChar(c)) return 'a "<" that starts no tag (text must write it &lt;)';
    const tag = startTag(div, lt);
    if ('problem' in tag) return tag.problem;
    if (!rootSeen) {
      if (tag.name !== 'div' || !tag.xhtml) return 'the root element is not a div in the XHTML namespace';
      rootSeen = true;
    }
    if (tag.imageSource) content = true;
    if (!tag.selfClosing) open.push(tag.name);
    else if (open.length === 0) rootClosed = true;
    i = tag.end;
  }
  if (!rootSeen) return 'no root div';
  if (open.length > 0) return `element ${open[open.length - 1] ?? 'div'} is not closed`;
  if (!content) return 'no non-whitespace content (txt-2)';
  return undefined;
}
