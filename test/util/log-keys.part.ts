import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { isLoggedKey, logger } from '../../src/log';
import { CaptureTransport } from '../support/capture-log';

/**
 * The log's allow-list (`src/log.ts`) writes "[redacted]" for any metadata key it does not know: safe,
 * but a field an operator needs (a file's id, a delivery's outcome) is then lost without a sign. This
 * reads every `logger.<level>(message, metadata)` call of the service's code and requires each key
 * its metadata names to be one the log writes. Metadata that is not an object literal (a spread of a
 * variable, a value built elsewhere) cannot be read here: those calls are listed below, each checked
 * by hand, so that a new one is looked at too.
 */
const ROOT = path.resolve(__dirname, '../..');
const SCANNED = ['src', 'queues', 'scripts'];

/** Metadata this test cannot read, as `file: source text`, and why each is safe. */
const CHECKED_BY_HAND = new Map([
  ['src/endpoints/endpoint-service.ts: ...fields', 'errorFields(err) in a variable: errorName, errorCode, errorMessage'],
  ['src/http/routes/uploads.ts: ...file', '{ caseId, fileId, sha256 }'],
  ['src/util/enqueue-after-commit.ts: ...options.ids', "the caller's ids: caseId, deliveryId, pullId, count and the like"],
  ['queues/hand-back.ts: handedBack.ids', "the caller's ids: taskId, attachmentId, pages"],
]);

const LEVELS = new Set(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']);

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

interface Finding {
  readonly where: string;
  readonly key: string;
}

const unwrap = (e: ts.Expression): ts.Expression => (ts.isParenthesizedExpression(e) ? unwrap(e.expression) : e);

const isErrorFieldsCall = (e: ts.Expression): boolean => ts.isCallExpression(e) && e.expression.getText() === 'errorFields';

/** The keys of a metadata expression, and the parts of it that are not literal (`opaque`). */
function metadataKeys(meta: ts.Expression, keys: string[], opaque: string[]): void {
  const e = unwrap(meta);
  if (isErrorFieldsCall(e)) return;
  if (ts.isConditionalExpression(e)) {
    metadataKeys(e.whenTrue, keys, opaque);
    metadataKeys(e.whenFalse, keys, opaque);
    return;
  }
  if (!ts.isObjectLiteralExpression(e)) {
    opaque.push(e.getText());
    return;
  }
  for (const p of e.properties) {
    if (ts.isSpreadAssignment(p)) {
      const inner = unwrap(p.expression);
      if (ts.isObjectLiteralExpression(inner) || ts.isConditionalExpression(inner) || isErrorFieldsCall(inner)) metadataKeys(inner, keys, opaque);
      else opaque.push(`...${inner.getText()}`);
    } else if (p.name !== undefined) {
      keys.push(ts.isStringLiteral(p.name) ? p.name.text : p.name.getText());
    }
  }
}

function scan(): { unwritten: Finding[]; opaque: string[]; calls: number } {
  const unwritten: Finding[] = [];
  const opaque: string[] = [];
  let calls = 0;
  for (const file of SCANNED.flatMap((d) => sourceFiles(path.join(ROOT, d)))) {
    const rel = path.relative(ROOT, file).split(path.sep).join('/');
    const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      if (
        ts.isCallExpression(node) &&
        ts.isPropertyAccessExpression(node.expression) &&
        node.expression.expression.getText() === 'logger' &&
        LEVELS.has(node.expression.name.text)
      ) {
        calls++;
        const meta = node.arguments[1];
        if (meta !== undefined) {
          const keys: string[] = [];
          const parts: string[] = [];
          metadataKeys(meta, keys, parts);
          const line = source.getLineAndCharacterOfPosition(node.getStart()).line + 1;
          for (const key of keys) if (!isLoggedKey(key)) unwritten.push({ where: `${rel}:${line}`, key });
          for (const part of parts) opaque.push(`${rel}: ${part}`);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return { unwritten, opaque, calls };
}

describe("the service's log calls", () => {
  const { unwritten, opaque, calls } = scan();

  it('are found (the scan reads the code)', () => {
    expect(calls).toBeGreaterThan(100);
  });

  it('name only metadata keys the log writes, not ones it would redact', () => {
    expect(unwritten).toEqual([]);
  });

  it('pass metadata this scan cannot read only where it was checked by hand', () => {
    expect([...new Set(opaque)].sort()).toEqual([...CHECKED_BY_HAND.keys()].sort());
  });
});

describe('keys whose values come from elsewhere', () => {
  const capture = new CaptureTransport();
  beforeAll(() => logger.add(capture));
  afterAll(() => logger.remove(capture));

  const logged = (meta: Record<string, unknown>): Record<string, unknown> => {
    capture.lines.length = 0;
    logger.warn('shape probe', meta);
    return JSON.parse(capture.lines.find((l) => l.includes('"message":"shape probe"')) ?? '{}') as Record<string, unknown>;
  };

  it('are written when shaped like a code or a FHIR version', () => {
    expect(logged({ code: 'not-supported', fhirVersion: '4.0.1', fileId: 'f-1' })).toMatchObject({ code: 'not-supported', fhirVersion: '4.0.1', fileId: 'f-1' });
    expect(logged({ code: 'EAI_AGAIN', fhirVersion: '5.0.0-ballot' })).toMatchObject({ code: 'EAI_AGAIN', fhirVersion: '5.0.0-ballot' });
  });

  it('are redacted otherwise', () => {
    expect(logged({ code: 'MRN 448812', fhirVersion: 'Zinnia Marrowvale' })).toMatchObject({ code: '[redacted]', fhirVersion: '[redacted]' });
    expect(logged({ code: { text: 'x' }, fhirVersion: 4 })).toMatchObject({ code: '[redacted]', fhirVersion: '[redacted]' });
  });
});
