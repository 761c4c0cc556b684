/**
 * The specialist's written opinion: what `PUT /api/cases/:id/opinion` takes. The rule that every
 * question of the family has an answer needs the case's intake, so it lives in `answers.ts`.
 * @packageDocumentation
 */
import { z } from 'zod';
import { isValidNpi } from '../cases/npi';
import { fhirControlRefusal, fhirStringControlIn } from '../fhir/fhir-text';
import { unprintableCharacter } from '../report/report-fonts';

/** Maximum lengths, in characters, after trimming. */
export const OPINION_LIMITS = { section: 20_000, answer: 10_000, question: 1_000, name: 200 } as const;

/**
 * Characters that are letters, symbols or punctuation by category but show nothing: the Hangul
 * fillers (U+3164, U+FFA0, U+115F, U+1160) and the blank Braille pattern (U+2800).
 */
const BLANK_LETTERS = /[\u115F\u1160\u3164\uFFA0\u2800]/gu;
const VISIBLE = /[\p{L}\p{N}\p{S}\p{P}]/u;

/**
 * True when `s` shows something: `trim()` leaves zero-width and other invisible characters (U+200B,
 * U+2060, U+00AD, U+3164), and an answer made only of them printed the family's question unanswered.
 */
function hasVisibleText(s: string): boolean {
  return VISIBLE.test(s.replace(BLANK_LETTERS, ''));
}

/** "U+05D0 (א)": a character named for the one who typed it. */
function named(ch: string): string {
  return `U+${(ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')} (${ch})`;
}

const text = (
  label: string,
  max: number,
  { controls = 'refuse', printed = 'regular', blank = 'refuse' }: { controls?: 'refuse' | 'allow'; printed?: 'regular' | 'bold' | 'unchecked'; blank?: 'refuse' | 'allow' } = {},
) => {
  const trimmed = z
    .string({ error: (issue) => (issue.input === undefined ? `${label} is required` : `${label} must be text`) })
    .trim()
    .min(1, { error: `${label} must not be empty`, abort: true });
  const base = (blank === 'allow' ? trimmed : trimmed.refine(hasVisibleText, { error: `${label} must not be empty (it holds only invisible characters)`, abort: true })).max(max, {
    error: `${label} must be at most ${max} characters`,
  });
  // What the report carries to the EHR as FHIR text is refused with a control character, naming it:
  // the recipient's server would refuse the whole report, on every attempt.
  const controlled =
    controls === 'allow'
      ? base
      : base.refine((s) => fhirStringControlIn(s) === undefined, {
          error: (issue) => fhirControlRefusal(label, fhirStringControlIn(String(issue.input))),
        });
  // A character no report font has would print as "�" on the signed report: refused, naming it
  // (the report's own coverage check, so what is accepted is what prints).
  return printed === 'unchecked'
    ? controlled
    : controlled.refine((s) => unprintableCharacter(s, printed) === undefined, {
        error: (issue) => {
          const ch = unprintableCharacter(String(issue.input), printed);
          return `${label} holds a character the report cannot print (${ch === undefined ? 'unknown' : named(ch)}): the signed PDF would show "�" in its place. The report prints Latin, Greek, Cyrillic, Chinese, Japanese and Korean text and common symbols, not other scripts or emoji; write it another way`;
        },
      });
};

/** One of the family's questions (as written in the intake) and the specialist's answer. */
export const AnswerSchema = z.object({
  // Only matched against the intake's questions (the report prints the intake's text): refusing a
  // control character here would make a question the family wrote with one unanswerable.
  // Nor a character the report cannot print, nor a question of invisible characters only: the
  // report prints the intake's text, not this one.
  question: text('Question', OPINION_LIMITS.question, { controls: 'allow', printed: 'unchecked', blank: 'allow' }).meta({ description: 'The family question, exactly as in the intake.' }),
  answer: text('Answer', OPINION_LIMITS.answer),
});

/** Who writes and signs; used when the specialist directory has no assignment for the case. */
export const SpecialistSchema = z
  .object({
    name: text('Specialist name', OPINION_LIMITS.name, { printed: 'bold' }),
    npi: z
      .string()
      .trim()
      .regex(/^\d{10}$/, { error: 'Specialist NPI must be exactly 10 digits', abort: true })
      .refine(isValidNpi, { error: 'Specialist NPI is not valid (check digit)' })
      .optional(),
  })
  .strict();

/** Body of `PUT /api/cases/:id/opinion`. */
export const OpinionBodySchema = z
  .object({
    summary: text('Summary', OPINION_LIMITS.section),
    diagnosisAssessment: text('Diagnosis assessment', OPINION_LIMITS.section),
    recommendations: text('Treatment recommendations', OPINION_LIMITS.section),
    answers: z.array(AnswerSchema, { error: 'answers must be a list of {question, answer}' }).max(20, { error: 'answers must have at most 20 items' }),
    followUp: text('Follow-up', OPINION_LIMITS.section),
    specialist: SpecialistSchema.optional(),
  })
  .strict()
  .meta({ title: 'Opinion', description: "The specialist's second opinion: every question of the family must have an answer." });

/** A parsed `PUT /api/cases/:id/opinion` body. */
export type OpinionBody = z.infer<typeof OpinionBodySchema>;

/** The stored opinion content (the body without the specialist block). */
export type OpinionContent = Omit<OpinionBody, 'specialist'>;

/** The specialist who writes and signs, as printed on the report and sent as a FHIR Practitioner. */
export interface SpecialistIdentity {
  /** Subject of the specialist's API token. */
  readonly sub: string;
  readonly name: string;
  readonly npi?: string;
  /**
   * The name in parts, when the specialist directory has it (US Core Practitioner requires
   * `name.family`: https://hl7.org/fhir/us/core/StructureDefinition-us-core-practitioner.html).
   */
  readonly humanName?: { readonly family: string; readonly given: readonly string[]; readonly prefix?: readonly string[]; readonly suffix?: readonly string[] };
}
