import { readdir, readFile } from 'node:fs/promises';

/**
 * The sandbox processes this test process spawned that still run (the outermost pid of
 * each): its children whose command line holds an `airlock-step-` working directory.
 */
export async function liveSandboxes(): Promise<number[]> {
  const kids = new Set<number>();
  for (const t of await readdir(`/proc/${process.pid}/task`)) {
    const text = await readFile(`/proc/${process.pid}/task/${t}/children`, 'utf8').catch(() => '');
    for (const k of text.split(' ')) if (k.trim()) kids.add(Number(k));
  }
  const out: number[] = [];
  for (const k of kids) {
    const cmd = await readFile(`/proc/${k}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes('airlock-step-')) out.push(k);
  }
  return out.sort((a, b) => a - b);
}

/** Whether a pid still names a live (not yet reaped) process. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
