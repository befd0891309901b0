import { describe, expect, it } from 'vitest';
import { formatDuration, ProgressBar } from '../../src/cli/progress.js';

function stream(isTTY: boolean) {
  const chunks: string[] = [];
  return { chunks, isTTY, columns: 80, write: (s: string) => chunks.push(s) };
}

describe('ProgressBar', () => {
  it('shows count, percent, rate and ETA', () => {
    let now = 0;
    const out = stream(false);
    const bar = new ProgressBar({ total: 1000, stream: out, label: 'Work', now: () => now });
    expect(bar.line()).toMatchInlineSnapshot(
      `"Work [--------------------]   0.0%  0/1000  0.0/s  ETA --:--"`,
    );
    now = 10_000;
    bar.update(250);
    expect(bar.line()).toMatchInlineSnapshot(
      `"Work [#####---------------]  25.0%  250/1000  25/s  ETA 0:30"`,
    );
    now = 20_000;
    bar.update(1200);
    // More rows than counted at the start (new ones arrived): capped at 100 %, no ETA.
    expect(bar.line()).toMatchInlineSnapshot(
      `"Work [####################] 100.0%  1200/1000  60/s  ETA 0:00"`,
    );
  });

  it('off a TTY prints one line per 10 % step; on a TTY redraws one line', () => {
    let now = 0;
    const piped = stream(false);
    const bar = new ProgressBar({ total: 100, stream: piped, now: () => now });
    for (let done = 0; done <= 100; done += 5) {
      now += 200;
      bar.update(done);
    }
    bar.finish();
    expect(piped.chunks).toHaveLength(11);
    expect(piped.chunks.every((c) => c.endsWith('\n') && !c.includes('\r'))).toBe(true);

    const tty = stream(true);
    const live = new ProgressBar({ total: 100, stream: tty, now: () => now });
    live.update(1);
    live.update(2); // within 100 ms: not redrawn
    now += 150;
    live.update(3);
    live.finish();
    expect(tty.chunks.map((c) => c.slice(0, 1))).toEqual(['\r', '\r', '\r']);
    expect(tty.chunks.at(-1)).toMatch(/3\/100 /);
    expect(tty.chunks.at(-1)?.endsWith('\u001b[K\n')).toBe(true);
  });

  it('formats durations', () => {
    expect([0, 59.4, 61, 3600, 3725].map(formatDuration)).toEqual([
      '0:00',
      '0:59',
      '1:01',
      '1:00:00',
      '1:02:05',
    ]);
  });
});
