import {
  allowedTransitions,
  assertTransition,
  canTransition,
  CASE_STATUSES,
  IllegalTransitionError,
  isCaseStatus,
  isTerminal,
  TERMINAL_STATUSES,
  TRANSITIONS,
  type CaseStatus,
} from '../../src/cases/lifecycle';

/** The lifecycle spelled out pair by pair, independently of the table under test. */
const LEGAL = new Set<string>([
  'submitted>collecting_records',
  'submitted>ineligible',
  'submitted>cancelled',
  'collecting_records>records_complete',
  'collecting_records>cancelled',
  'records_complete>assigned',
  'records_complete>collecting_records',
  'records_complete>cancelled',
  'assigned>in_review',
  'assigned>cancelled',
  'in_review>awaiting_information',
  'in_review>report_signed',
  'in_review>cancelled',
  'awaiting_information>in_review',
  'awaiting_information>cancelled',
  'report_signed>delivered',
  'report_signed>in_review',
  'report_signed>cancelled',
  'delivered>closed',
]);

const pairs: [CaseStatus, CaseStatus][] = CASE_STATUSES.flatMap((from) => CASE_STATUSES.map((to): [CaseStatus, CaseStatus] => [from, to]));

describe('the transition table', () => {
  it('has every status as a key and only known statuses as targets', () => {
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...CASE_STATUSES].sort());
    for (const targets of Object.values(TRANSITIONS)) for (const t of targets) expect(isCaseStatus(t)).toBe(true);
  });

  it('has exactly the documented 19 transitions', () => {
    const inTable = CASE_STATUSES.flatMap((from) => TRANSITIONS[from].map((to) => `${from}>${to}`));
    expect(inTable.sort()).toEqual([...LEGAL].sort());
  });

  it('is frozen', () => {
    expect(Object.isFrozen(TRANSITIONS)).toBe(true);
  });

  it('has ineligible, closed and cancelled as its only terminal statuses', () => {
    expect([...TERMINAL_STATUSES].sort()).toEqual(['cancelled', 'closed', 'ineligible']);
    expect(isTerminal('closed')).toBe(true);
    expect(isTerminal('delivered')).toBe(false);
  });

  it('lets every non-terminal status except delivered be cancelled', () => {
    const cancellable = CASE_STATUSES.filter((s) => canTransition(s, 'cancelled'));
    expect(cancellable).toEqual([
      'submitted',
      'collecting_records',
      'records_complete',
      'assigned',
      'in_review',
      'awaiting_information',
      'report_signed',
    ]);
  });

  it('reaches every status from submitted, and closed from every non-terminal status', () => {
    const reach = (from: CaseStatus): Set<CaseStatus> => {
      const seen = new Set<CaseStatus>([from]);
      const queue = [from];
      while (queue.length > 0) {
        for (const next of TRANSITIONS[queue.shift() as CaseStatus]) {
          if (!seen.has(next)) {
            seen.add(next);
            queue.push(next);
          }
        }
      }
      return seen;
    };
    expect([...reach('submitted')].sort()).toEqual([...CASE_STATUSES].sort());
    for (const s of CASE_STATUSES.filter((x) => !isTerminal(x))) expect(reach(s).has('closed')).toBe(true);
  });
});

describe('every pair of statuses (full 11 × 11 matrix)', () => {
  it.each(pairs)('%s → %s', (from, to) => {
    const legal = LEGAL.has(`${from}>${to}`);
    expect(canTransition(from, to)).toBe(legal);
    expect(allowedTransitions(from).includes(to)).toBe(legal);
    if (legal) {
      expect(() => assertTransition(from, to)).not.toThrow();
    } else {
      let error: unknown;
      try {
        assertTransition(from, to);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(IllegalTransitionError);
      const illegal = error as IllegalTransitionError;
      expect(illegal.from).toBe(from);
      expect(illegal.to).toBe(to);
      expect(illegal.allowed).toEqual(TRANSITIONS[from]);
      const expected =
        TRANSITIONS[from].length === 0
          ? `A case cannot move from ${from} to ${to}: ${from} is a final status, no further transitions are allowed.`
          : `A case cannot move from ${from} to ${to}. From ${from} it can move to: ${TRANSITIONS[from].join(', ')}.`;
      expect(illegal.message).toBe(expected);
    }
  });
});

describe('error messages', () => {
  it('lists the allowed transitions', () => {
    expect(() => assertTransition('in_review', 'delivered')).toThrow(
      'A case cannot move from in_review to delivered. From in_review it can move to: awaiting_information, report_signed, cancelled.',
    );
  });

  it('says a terminal status is final', () => {
    expect(() => assertTransition('closed', 'in_review')).toThrow(
      'A case cannot move from closed to in_review: closed is a final status, no further transitions are allowed.',
    );
  });

  it('rejects unknown statuses read from storage', () => {
    expect(() => assertTransition('archived', 'closed')).toThrow('Unknown case status "archived".');
    expect(() => assertTransition('delivered', 'archived')).toThrow('Unknown case status "archived". From delivered a case can move to: closed.');
    expect(allowedTransitions('archived' as CaseStatus)).toEqual([]);
    expect(isCaseStatus('archived')).toBe(false);
    expect(new IllegalTransitionError('x', 'y').name).toBe('IllegalTransitionError');
  });
});
