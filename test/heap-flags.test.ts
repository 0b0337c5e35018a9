import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { SEMI_SPACE_MB } from '../src/heap-growth.js';
import { CLI, ROOT } from './helpers.js';

const run = promisify(execFile);
const FLAG = `--max-semi-space-size=${SEMI_SPACE_MB}`;

// Issue 13 item 2: the young generation's cap is read by V8 only when the heap is made, so the
// CLI carries it on its shebang, the Docker image on its ENTRYPOINT and the systemd unit on ExecStart; these tests keep all three
// with src/heap-growth.ts and show the flag reaches the process.
describe('V8 flags avito-sync starts with (backfill in bounded memory)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'avito-heap-flags-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the CLI started through its shebang line runs with the young generation capped', async () => {
    const shebang = readFileSync(CLI, 'utf8').split('\n', 1)[0]!;
    expect(shebang).toBe(`#!/usr/bin/env -S node ${FLAG}`);
    // As the kernel does: the interpreter, then the rest of the line as one argument, then the file.
    const [interpreter, ...rest] = shebang.slice(2).split(' ');
    const probe = path.join(dir, 'probe.cjs');
    writeFileSync(probe, 'process.on("exit", () => require("fs").writeSync(2, "EXECARGV " + JSON.stringify(process.execArgv) + "\\n"));\n');
    const { stdout, stderr } = await run(interpreter!, [rest.join(' '), CLI, '--version'], { env: { ...process.env, NODE_OPTIONS: `--require ${probe}` } });
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const execArgv = JSON.parse(/EXECARGV (.*)/.exec(stderr)![1]!) as string[];
    expect(execArgv).toContain(FLAG);
  });

  it('the Docker image and the systemd unit start node with the same flag', () => {
    const entry = /^ENTRYPOINT (.*)$/m.exec(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'))![1]!;
    expect(JSON.parse(entry)).toEqual(['node', FLAG, 'dist/src/cli/main.js']);
    const exec = /^ExecStart=(.*)$/m.exec(readFileSync(path.join(ROOT, 'config/avito-sync.service'), 'utf8'))![1]!;
    expect(exec.split(' ').slice(0, 3)).toEqual(['/usr/bin/node', FLAG, '/opt/avito-crm-sync/dist/src/cli/main.js']);
  });
});
