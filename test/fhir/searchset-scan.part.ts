import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { Bundle } from 'fhir/r4';
import { MalformedResponseError, scanSearchPage } from '../../src/fhir';
import { scanSearchset } from '../../src/fhir/searchset-scan';
import { pageEntries } from '../../src/pull/page-resources';

/**
 * The searchset scan locates each entry's resource in the bytes received; the raw store keeps,
 * hashes and parses those bytes. Every span must be exactly the resource JSON.parse reads there,
 * on real bundles and on odd-but-legal JSON; anything the scan cannot follow must fall back to a
 * whole parse (never a wrong span).
 */
const DATA = path.resolve(__dirname, '../../../shared/data/fhir');
const BASE = 'https://ehr.example.org/fhir';

function assertSpansMatchParse(body: Buffer): number {
  const parsed = JSON.parse(body.toString('utf8')) as { entry?: { resource?: unknown }[] };
  const scan = scanSearchset(body);
  expect(scan).toBeDefined();
  const spans = scan?.spans ?? new Map();
  const withResource = (parsed.entry ?? []).flatMap((e, i) => (typeof e.resource === 'object' && e.resource !== null && !Array.isArray(e.resource) ? [i] : []));
  expect([...spans.keys()].sort((a, b) => a - b)).toEqual(withResource);
  for (const i of withResource) {
    const span = spans.get(i);
    const resource = parsed.entry?.[i]?.resource as { resourceType?: unknown; id?: unknown; meta?: { versionId?: unknown } };
    expect(JSON.parse(body.toString('utf8', span?.start, span?.end))).toEqual(resource);
    expect(span?.resourceType).toBe(typeof resource.resourceType === 'string' ? resource.resourceType : undefined);
    expect(span?.id).toBe(typeof resource.id === 'string' ? resource.id : undefined);
    expect(span?.versionId).toBe(typeof resource.meta?.versionId === 'string' ? resource.meta.versionId : undefined);
    // Whom the record is about: the top-level subject / patient references, as JSON.parse reads them.
    const refs = ['subject', 'patient'].flatMap((k) => {
      const ref = (resource as Record<string, { reference?: unknown } | undefined>)[k]?.reference;
      return typeof ref === 'string' ? [ref] : [];
    });
    expect(span?.subjectReferences ?? []).toEqual(refs);
  }
  // The envelope is the Bundle with each resource replaced by {}.
  const envelope = JSON.parse(scan?.envelope ?? 'null') as { entry?: { resource?: unknown }[] };
  for (const i of withResource) expect(envelope.entry?.[i]?.resource).toEqual({});
  return withResource.length;
}

it('finds every resource of real searchset and transaction Bundles exactly where JSON.parse reads it', () => {
  const dirs = ['synthea-smart', 'inferno-uscore', 'synthea-hiv'].map((d) => path.join(DATA, d)).filter((d) => fs.existsSync(d));
  expect(dirs.length).toBeGreaterThan(0);
  let resources = 0;
  let files = 0;
  for (const dir of dirs) {
    for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.json')).slice(0, 6)) {
      const body = fs.readFileSync(path.join(dir, name));
      const doc = JSON.parse(body.toString('utf8')) as { resourceType?: string };
      if (doc.resourceType !== 'Bundle') continue;
      resources += assertSpansMatchParse(body);
      files += 1;
    }
  }
  expect(files).toBeGreaterThan(0);
  expect(resources).toBeGreaterThan(100);
});

it('follows odd but legal JSON: whitespace, escapes in keys and strings, nesting, repeated keys, non-object entries', () => {
  const body = Buffer.from(
    ' \n{ "resourceType" : "Bundle" ,\t"type":"searchset", "entry" : [ ' +
      '{"fullUrl":"x","resource":{"resourceType":"Observation","id":"a\\"b","note":[{"text":"} ] { [ \\\\"}],"meta":{"versionId":"7"}}},' +
      '{"resource":{"\\u0069d":"esc","resourceType":"Condition","code":{"text":"\u00e9\u4e2d"},"id":"last-wins"}},' +
      '{"search":{"mode":"match"}},' +
      '"not-an-object",' +
      '{"resource":[1,2]},' +
      '{"resource":{"resourceType":"Patient","meta":{"versionId":3},"id":12}},' +
      '{"resource":{"resourceType":"Binary","data":"QUJD\\nREVG"},"resource":{"resourceType":"Basic","id":"second"}}' +
      ' ] , "link":[{"relation":"next","url":"https://ehr.example.org/fhir?page=2"}] }\r\n',
  );
  expect(assertSpansMatchParse(body)).toBe(4);
});

it('gives up (whole parse) on truncated, unbalanced or trailing-junk bodies, and on a repeated entry key keeps the last', () => {
  const good = '{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"p"}}]}';
  for (const bad of [good.slice(0, 40), good.slice(0, -1), `${good} junk`, good.replace(']}', '}'), '[1,2]', '"Bundle"', '']) {
    expect(scanSearchset(Buffer.from(bad))).toBeUndefined();
  }
  const repeated = Buffer.from('{"resourceType":"Bundle","entry":[{"resource":{"id":"old"}}],"entry":[{"resource":{"resourceType":"Patient","id":"new"}}]}');
  expect(assertSpansMatchParse(repeated)).toBe(1);
});

it('keeps each resource as the bytes received, hashed as they are, parsing only those that can carry attachments', () => {
  const observation = '{ "resourceType": "Observation", "id": "o1", "valueQuantity": { "value": 1.50, "unit": "mg" } }';
  const document = '{"resourceType":"DocumentReference","id":"d1","content":[{"attachment":{"url":"Binary/b1"}}]}';
  const outcome = '{"resourceType":"OperationOutcome","issue":[]}';
  const body = Buffer.from(
    `\ufeff{"resourceType":"Bundle","type":"searchset","entry":[{"resource":${observation}},{"resource":${document}},` +
      `{"resource":${outcome},"search":{"mode":"outcome"}}],"link":[{"relation":"next","url":"?page=2"}]}`,
  );
  const page = scanSearchPage(body, body.length, BASE);
  // Query-only: relative to the page's own URL when the reader is told it (the client always is), else the base.
  expect(page.nextUrl).toBe('https://ehr.example.org/fhir/?page=2');
  expect(scanSearchPage(body, body.length, BASE, undefined, 'https://ehr.example.org/fhir/Observation?patient=p1').nextUrl).toBe('https://ehr.example.org/fhir/Observation?page=2');
  const { entries, source } = pageEntries(page);
  expect(source).toBeNull();
  expect(entries.map((e) => `${e.type}/${e.id}`)).toEqual(['Observation/o1', 'DocumentReference/d1']);
  const [obs, doc] = entries;
  // The decimal keeps its trailing zero and the spaces: the server's bytes, not a re-serialization.
  expect(body.toString('utf8', obs?.offset, (obs?.offset ?? 0) + (obs?.length ?? 0))).toBe(observation);
  expect(obs?.sha256).toBe(createHash('sha256').update(observation).digest('hex'));
  expect(obs?.resource).toBeUndefined();
  expect(doc?.resource).toEqual(JSON.parse(document));
});

it('parses a page the scan cannot follow (not UTF-8) whole, serializing its resources into a buffer of their own', () => {
  const body = Buffer.concat([
    Buffer.from('{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"p","name":[{"text":"'),
    Buffer.from([0xff, 0xfe]),
    Buffer.from('"}]}},{"resource":{"resourceType":"Condition"}}]}'),
  ]);
  const page = scanSearchPage(body, body.length, BASE);
  expect(page.spans.size).toBe(0);
  const { entries, source } = pageEntries(page);
  expect(source).not.toBeNull();
  expect(entries).toHaveLength(2);
  const condition = entries[1];
  const json = source?.toString('utf8', condition?.offset, (condition?.offset ?? 0) + (condition?.length ?? 0));
  expect(json).toBe('{"resourceType":"Condition"}');
  expect(condition?.id).toBe(`sha256:${createHash('sha256').update(json ?? '').digest('hex')}`);
});

it('refuses a page whose envelope is not valid JSON or not a Bundle, and a document resource that is not JSON', () => {
  const envelopeJunk = Buffer.from('{"resourceType":"Bundle","total":12x,"entry":[{"resource":{"resourceType":"Patient","id":"p"}}]}');
  expect(() => scanSearchPage(envelopeJunk, envelopeJunk.length, BASE)).toThrow(MalformedResponseError);
  const notBundle = Buffer.from('{"resourceType":"Patient","id":"p"}');
  expect(() => scanSearchPage(notBundle, notBundle.length, BASE)).toThrow(MalformedResponseError);
  const badDocument = Buffer.from('{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"DocumentReference","id":"d","size":1x}}]}');
  const page = scanSearchPage(badDocument, badDocument.length, BASE);
  expect(() => pageEntries(page)).toThrow(MalformedResponseError);
});

it('reads the resources of a Bundle typed in @types/fhir the same way the parse does', () => {
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'searchset',
    entry: [{ resource: { resourceType: 'Patient', id: 'p1', meta: { versionId: '2' } } }, { resource: { resourceType: 'Patient', id: 'p2' } }],
  };
  const body = Buffer.from(JSON.stringify(bundle, null, 2));
  const { entries } = pageEntries(scanSearchPage(body, body.length, BASE));
  expect(entries.map((e) => [e.id, e.versionId])).toEqual([['p1', '2'], ['p2', '']]);
});
