import { matchAnswers } from '../../src/opinion/answers';
import { HttpProblem } from '../../src/http/problem';

const questions = ['Should she move to an insulin pump?', 'Is her growth slowing because of celiac disease?'];

it('orders answers as the questions, matching text up to white space', () => {
  expect(matchAnswers(questions, [{ question: ' Is her growth slowing  because of celiac disease? ', answer: 'Yes.' }, { question: questions[0] ?? '', answer: 'No.' }])).toEqual([
    { question: questions[0], answer: 'No.' },
    { question: questions[1], answer: 'Yes.' },
  ]);
});

it('refuses with 400 naming the unanswered question, an unknown one and a repeat', () => {
  let problem: HttpProblem | undefined;
  try {
    matchAnswers(questions, [{ question: questions[0] ?? '', answer: 'a' }, { question: questions[0] ?? '', answer: 'b' }, { question: 'Other?', answer: 'c' }]);
  } catch (err) {
    problem = err as HttpProblem;
  }
  expect(problem?.status).toBe(400);
  expect(problem?.errors.map((e) => e.field)).toEqual(['answers.1.question', 'answers.2.question', 'answers']);
  expect(problem?.errors[2]?.detail).toBe(`Question 2 of the family has no answer: "${questions[1]}"`);
});
