/**
 * The fault rules of one server (`server.faults`): add, remove, clear, and, for each request, the
 * decision of which rules fire. Every matching request advances each matching rule's counter (and
 * its PRNG, when it has a probability), whether it fires or not, so triggering is deterministic.
 */
import type { FaultAction, FaultRuleInput } from './fault-types';
import { mulberry32 } from '../../util/mulberry32';
import { parseRoutePattern, type RoutePattern } from './route-pattern';

/** A rule as registered, with its counters. */
export interface FaultRule {
  readonly id: number;
  readonly input: FaultRuleInput;
  /** Matching requests seen so far. */
  readonly matched: number;
  /** Times the rule fired. */
  readonly fired: number;
}

export interface FaultDecision {
  /** Sum of the latency of the latency rules that fired (ms). */
  readonly latencyMs: number;
  /** The first non-latency action that fired, if any. */
  readonly action: FaultAction | undefined;
  /** Resolves once every `hold` rule that fired is released (at once when none fired). */
  readonly held: Promise<void>;
}

interface ActiveRule {
  readonly id: number;
  readonly input: FaultRuleInput;
  readonly pattern: RoutePattern;
  readonly random: (() => number) | undefined;
  matched: number;
  fired: number;
}

export class FaultRegistry {
  private readonly rules: ActiveRule[] = [];
  private nextId = 1;
  /** The gate of each `hold` rule not released yet. */
  private readonly gates = new Map<number, { readonly opened: Promise<void>; readonly open: () => void }>();

  constructor(private readonly serverSeed: number) {}

  /** Adds a rule; returns its id (for {@link remove} and {@link rule}). Throws on an invalid rule. */
  add(input: FaultRuleInput): number {
    validateRule(input);
    const id = this.nextId++;
    const seed = input.seed ?? (Math.imul(this.serverSeed ^ 0x9e3779b9, id) >>> 0);
    this.rules.push({
      id,
      input,
      pattern: parseRoutePattern(input.match),
      random: input.probability === undefined ? undefined : mulberry32(seed),
      matched: 0,
      fired: 0,
    });
    return id;
  }

  /** Lets the requests a `hold` rule keeps (and any it fires on later) go on. */
  release(id: number): void {
    this.gateOf(id).open();
  }

  private gateOf(id: number): { readonly opened: Promise<void>; readonly open: () => void } {
    let gate = this.gates.get(id);
    if (!gate) {
      let open: () => void = () => undefined;
      const opened = new Promise<void>((resolve) => {
        open = resolve;
      });
      gate = { opened, open };
      this.gates.set(id, gate);
    }
    return gate;
  }

  remove(id: number): void {
    this.gates.get(id)?.open();
    this.gates.delete(id);
    const index = this.rules.findIndex((rule) => rule.id === id);
    if (index >= 0) {
      this.rules.splice(index, 1);
    }
  }

  clear(): void {
    this.rules.length = 0;
    for (const gate of this.gates.values()) {
      gate.open();
    }
    this.gates.clear();
  }

  /** A snapshot of one rule's counters. */
  rule(id: number): FaultRule | undefined {
    const rule = this.rules.find((candidate) => candidate.id === id);
    return rule && { id: rule.id, input: rule.input, matched: rule.matched, fired: rule.fired };
  }

  list(): FaultRule[] {
    return this.rules.map((rule) => ({ id: rule.id, input: rule.input, matched: rule.matched, fired: rule.fired }));
  }

  /** Decides which faults apply to a request (`target` = path relative to the base + query). */
  decide(method: string, target: string): FaultDecision {
    let latencyMs = 0;
    let action: FaultAction | undefined;
    const holds: Promise<void>[] = [];
    for (const rule of this.rules) {
      if (!rule.pattern.matches(method, target)) {
        continue;
      }
      rule.matched++;
      if (!shouldFire(rule)) {
        continue;
      }
      if (rule.input.action.kind === 'latency') {
        rule.fired++;
        latencyMs += rule.input.action.ms;
      } else if (rule.input.action.kind === 'hold') {
        rule.fired++;
        holds.push(this.gateOf(rule.id).opened);
      } else if (!action) {
        rule.fired++;
        action = rule.input.action;
      }
    }
    return { latencyMs, action, held: Promise.all(holds).then(() => undefined) };
  }
}

function shouldFire(rule: ActiveRule): boolean {
  const n = rule.matched;
  const draw = rule.random?.();
  const { nth, from, to, probability } = rule.input;
  if (nth !== undefined && n !== nth) {
    return false;
  }
  if (from !== undefined && n < from) {
    return false;
  }
  if (to !== undefined && n > to) {
    return false;
  }
  return probability === undefined || (draw as number) < probability;
}

function validateRule(input: FaultRuleInput): void {
  const positive = (value: number | undefined, name: string): void => {
    if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
      throw new Error(`Fault rule "${input.match}": ${name} must be an integer ≥ 1`);
    }
  };
  positive(input.nth, 'nth');
  positive(input.from, 'from');
  positive(input.to, 'to');
  if (input.probability !== undefined && !(input.probability >= 0 && input.probability <= 1)) {
    throw new Error(`Fault rule "${input.match}": probability must be between 0 and 1`);
  }
  const action = input.action;
  if (action.kind === 'latency' && !(action.ms >= 0)) {
    throw new Error(`Fault rule "${input.match}": latency ms must be ≥ 0`);
  }
  if (action.kind === 'truncated' && action.fraction !== undefined && !(action.fraction >= 0 && action.fraction < 1)) {
    throw new Error(`Fault rule "${input.match}": truncated fraction must be in [0, 1)`);
  }
  if ((action.kind === 'foreign-next-link' && !action.origin) || (action.kind === 'redirect' && !action.location)) {
    throw new Error(`Fault rule "${input.match}": ${action.kind} needs a URL`);
  }
}
