/**
 * Every question of the family gets an answer: the answers of an opinion, matched to the intake's
 * questions (compared after trimming and collapsing white space), in the intake's order.
 * @packageDocumentation
 */
import { HttpProblem, type FieldProblem } from '../http/problem';

/** One family question (as the family wrote it) and the specialist's answer. */
export interface QuestionAnswer {
  readonly question: string;
  readonly answer: string;
}

const norm = (s: string): string => s.normalize('NFC').replace(/\s+/g, ' ').trim();

/**
 * The answers in the order of `questions`, each carrying the question as the family wrote it.
 * @throws HttpProblem 400 naming each unanswered question, and each answer to a question that was not asked
 */
export function matchAnswers(questions: readonly string[], answers: readonly QuestionAnswer[]): QuestionAnswer[] {
  const byQuestion = new Map<string, string>();
  const problems: FieldProblem[] = [];
  answers.forEach((a, i) => {
    const key = norm(a.question);
    if (!questions.some((q) => norm(q) === key)) {
      problems.push({ field: `answers.${i}.question`, pointer: `#/answers/${i}/question`, detail: `"${a.question}" is not one of the family's questions` });
    } else if (byQuestion.has(key)) {
      problems.push({ field: `answers.${i}.question`, pointer: `#/answers/${i}/question`, detail: `"${a.question}" is answered twice` });
    } else {
      byQuestion.set(key, a.answer);
    }
  });
  const matched: QuestionAnswer[] = [];
  questions.forEach((q, i) => {
    const answer = byQuestion.get(norm(q));
    if (answer === undefined) {
      problems.push({ field: 'answers', pointer: '#/answers', detail: `Question ${i + 1} of the family has no answer: "${q}"` });
    } else {
      matched.push({ question: q, answer });
    }
  });
  if (problems.length > 0) {
    throw new HttpProblem(400, 'Invalid request', problems.map((p) => `${p.field}: ${p.detail}`).join('; '), problems);
  }
  return matched;
}
