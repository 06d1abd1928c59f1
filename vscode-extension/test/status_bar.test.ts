import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { StateParams } from '../src/protocol';
import { countsText, pickState, statusBarView } from '../src/status_bar';

function state(overrides: Partial<StateParams> = {}): StateParams {
    const root = overrides.root ?? '/home/me/app';
    return {
        root,
        uri: `file://${root}`,
        state: 'idle',
        error: null,
        errors: 0,
        warnings: 0,
        job: 3,
        percentage: null,
        message: null,
        targetDir: '/home/me/.cache/buildd/targets/app-1/2',
        daemon: 'up',
        ...overrides,
    };
}

const running = { kind: 'running' } as const;

describe('statusBarView', () => {
    it('shows each state of the workspace', () => {
        const cases: [Partial<StateParams>, string, string | undefined][] = [
            [{}, '$(check) buildd: warm', undefined],
            [{ warnings: 2 }, '$(check) buildd: warm, 2 warnings', 'warning'],
            [{ state: 'queued' }, '$(clock) buildd: queued', undefined],
            [{ state: 'running' }, '$(sync~spin) buildd: building', undefined],
            [{ state: 'running', percentage: 41.6 }, '$(sync~spin) buildd: building 42%', undefined],
            [{ state: 'running', percentage: 130 }, '$(sync~spin) buildd: building 100%', undefined],
            [{ state: 'running', percentage: 10, errors: 1 }, '$(sync~spin) buildd: building 10%, 1 error', undefined],
            [{ state: 'failed', errors: 1 }, '$(error) buildd: 1 error', 'error'],
            [{ state: 'failed', errors: 2, warnings: 1 }, '$(error) buildd: 2 errors, 1 warning', 'error'],
            [{ state: 'failed' }, '$(error) buildd: failed', 'error'],
            [{ state: 'error', error: 'malformed Cargo.toml' }, '$(alert) buildd: cannot build', 'error'],
            [{ state: 'failed', errors: 1, daemon: 'down' }, '$(debug-disconnect) buildd: daemon down', 'error'],
        ];
        for (const [overrides, text, background] of cases) {
            const view = statusBarView(running, [state(overrides)]);
            assert.equal(view.text, text, JSON.stringify(overrides));
            assert.equal(view.background, background, JSON.stringify(overrides));
        }
    });

    it('puts the details in the tooltip', () => {
        assert.match(
            statusBarView(running, [state({ state: 'error', error: 'malformed Cargo.toml' })]).tooltip,
            /cannot be built as it is: malformed Cargo\.toml\n.*recovers by itself/,
        );
        assert.match(
            statusBarView(running, [state({ state: 'running', job: 7, message: 'core-lib' })]).tooltip,
            /^Building \(job 7\)\.\ncore-lib\n\/home\/me\/app\n/,
        );
        assert.match(statusBarView(running, [state()]).tooltip, /Click to show the status\.$/);
        assert.match(
            statusBarView(running, [state({ daemon: 'down', error: 'the buildd daemon is not reachable: connection refused' })]).tooltip,
            /^The buildd daemon is not reachable; nothing is being built\.\nthe buildd daemon is not reachable: connection refused\n/,
        );
    });

    it('says when the server is starting or stopped, whatever the last state was', () => {
        assert.equal(statusBarView({ kind: 'starting' }, []).text, '$(loading~spin) buildd: starting');
        assert.equal(statusBarView(running, []).text, '$(loading~spin) buildd: starting');
        const stopped = statusBarView({ kind: 'stopped', reason: 'buildd was not found on PATH' }, [state()]);
        assert.equal(stopped.text, '$(circle-slash) buildd: stopped');
        assert.equal(stopped.background, 'error');
        assert.match(stopped.tooltip, /not running: buildd was not found on PATH\nRun "buildd: Restart the Server"/);
    });

    it('says connecting rather than down while the daemon has not been up yet', () => {
        const down = state({ daemon: 'down', error: 'not connected to the buildd daemon yet' });
        assert.equal(statusBarView(running, [down], undefined, false).text, '$(loading~spin) buildd: connecting');
        assert.equal(statusBarView(running, [down], undefined, true).text, '$(debug-disconnect) buildd: daemon down');
    });

    it('names the workspace shown when there are several', () => {
        const view = statusBarView(running, [state(), state({ root: '/home/me/lib' })], '/home/me/lib/src/x.rs');
        assert.match(view.tooltip, /\(2 workspaces: this is lib\)/);
    });
});

describe('pickState', () => {
    const app = state({ root: '/w/app' });
    const nested = state({ root: '/w/app/tools/gen', state: 'running' });
    const other = state({ root: '/w/other', state: 'failed', errors: 1 });
    const all = [app, nested, other];

    it('follows the active file, the innermost workspace first', () => {
        assert.equal(pickState(all, '/w/app/src/main.rs'), app);
        assert.equal(pickState(all, '/w/app/tools/gen/src/lib.rs'), nested);
        assert.equal(pickState(all, '/w/other/Cargo.toml'), other);
    });

    it('does not mistake a sibling with a common prefix for a parent', () => {
        assert.equal(pickState([app, state({ root: '/w/app2', state: 'queued' })], '/w/app2/src/lib.rs')?.root, '/w/app2');
    });

    it('shows the workspace that most needs attention when no active file is in one', () => {
        assert.equal(pickState(all, '/tmp/scratch.rs'), other);
        assert.equal(pickState(all), other);
        assert.equal(pickState([app, nested]), nested);
        assert.equal(pickState([]), undefined);
    });
});

describe('countsText', () => {
    it('pluralises and omits zeros', () => {
        assert.equal(countsText(0, 0), '');
        assert.equal(countsText(1, 0), '1 error');
        assert.equal(countsText(0, 1), '1 warning');
        assert.equal(countsText(3, 2), '3 errors, 2 warnings');
    });
});
