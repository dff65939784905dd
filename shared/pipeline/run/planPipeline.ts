import { invalid } from '../../errors/index.js';
import type { Step } from '../steps/index.js';

/** A step placed in the run's DAG. */
export interface PlannedStep {
  step: Step;
  name: string;
  output: string;
  /** Tables the step reads, sorted. */
  inputs: string[];
  /** Steps whose outputs it reads (they run first). */
  after: string[];
}

/** The DAG of a pipeline, in a topological order. */
export interface PipelinePlan {
  steps: PlannedStep[];
  /** Tables the pipeline reads that no step writes: they must exist on the target. */
  external: string[];
}

/** The tables a parsed step reads. */
export function stepInputs(step: Step): string[] {
  const tables = step.kind === 'sql' ? step.inputs : Object.values(step.inputs).map((i) => i.table);
  return [...new Set(tables)].sort();
}

/**
 * Orders a pipeline's steps by the tables they declare. Refuses, before anything runs: an
 * empty pipeline, two steps writing one table, a step reading its own output, and cycles
 * (naming the steps around the cycle).
 */
export function planPipeline(steps: readonly Step[], where: string): PipelinePlan {
  if (steps.length === 0) {
    throw invalid(`pipeline ${where} has no steps: add *.sql or *.ts / *.js / *.mjs step files`);
  }
  const producer = new Map<string, string>();
  for (const s of steps) {
    const other = producer.get(s.output);
    if (other) {
      throw invalid(`steps ${other} and ${s.name} both write ${s.output}: each table has exactly one producing step`, {
        table: s.output,
        steps: [other, s.name],
      });
    }
    producer.set(s.output, s.name);
  }
  const planned = new Map<string, PlannedStep>();
  for (const s of steps) {
    const inputs = stepInputs(s);
    if (inputs.includes(s.output)) {
      throw invalid(
        `step ${s.name} reads its own output ${s.output}: a step's output must be a new version, not an input`,
        {
          step: s.name,
        },
      );
    }
    const after = [...new Set(inputs.map((t) => producer.get(t)).filter((x): x is string => !!x))].sort();
    planned.set(s.name, { step: s, name: s.name, output: s.output, inputs, after });
  }
  const order: PlannedStep[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: string[]): void => {
    const mark = state.get(name);
    if (mark === 'done') return;
    if (mark === 'visiting') {
      const cycle = [...path.slice(path.indexOf(name)), name];
      throw invalid(`steps form a cycle: ${cycle.join(' → ')} (each reads a table the next one writes)`, {
        cycle,
      });
    }
    state.set(name, 'visiting');
    const node = planned.get(name) as PlannedStep;
    for (const dep of node.after) visit(dep, [...path, name]);
    state.set(name, 'done');
    order.push(node);
  };
  for (const name of [...planned.keys()].sort()) visit(name, []);
  const external = [...new Set(order.flatMap((s) => s.inputs).filter((t) => !producer.has(t)))].sort();
  return { steps: order, external };
}
