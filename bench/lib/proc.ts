/**
 * Linux /proc readings for benchmark processes: CPU time (user + system) and resident memory.
 * Used to attribute cost to the server under test and to the Postgres backends that served it.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: /proc/<pid>/stat counts CPU time in these ticks (100 on Linux x86-64). */
export const clockTicks = 100;

function statFields(pid: number): string[] | null {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces: split after its closing parenthesis.
    const rest = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
    return rest; // rest[0] is field 3 (state)
  } catch {
    return null;
  }
}

/** CPU milliseconds (user + system) used so far by one process, or 0 if it is gone. */
export function cpuMs(pid: number): number {
  const f = statFields(pid);
  if (!f) return 0;
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  return ((utime + stime) * 1000) / clockTicks;
}

/** The system (kernel) part of cpuMs: socket syscalls, page faults, scheduling. */
export function systemCpuMs(pid: number): number {
  const f = statFields(pid);
  return f ? (Number(f[12]) * 1000) / clockTicks : 0;
}

/**
 * CPU milliseconds of a process plus those of its children that exited and were reaped (e.g.
 * the zero-config server's short-lived initdb process), or 0 if it is gone.
 */
export function cpuWithChildrenMs(pid: number): number {
  const f = statFields(pid);
  if (!f) return 0;
  const total = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  return (total * 1000) / clockTicks;
}

/** Resident set size in MiB (VmRSS), or NaN if the process is gone. */
export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

function parentOf(pid: number): number {
  const f = statFields(pid);
  return f ? Number(f[1]) : -1;
}

/** Direct children of `pid` (e.g. a postmaster's backends), found by scanning /proc. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const child = Number(name);
    if (parentOf(child) === pid) out.push(child);
  }
  return out;
}

/**
 * CPU ms of every process of one Postgres cluster (postmaster + backends + background
 * workers), given any backend pid of it. Backends that exited in between are not counted,
 * so use it across a phase where connections stay open (pools do).
 */
export function clusterCpuMs(postmasterPid: number): number {
  return cpuMs(postmasterPid) + childrenOf(postmasterPid).reduce((a, p) => a + cpuMs(p), 0);
}

export function postmasterOf(backendPid: number): number {
  return parentOf(backendPid);
}
