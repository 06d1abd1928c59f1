import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';

import { initializationOptions, needsRestart, readConfig, resolveServerPath, SERVER_PATH_ENV } from '../src/config';

const settings = (values: Record<string, unknown>) => (key: string) => values[key];

describe('readConfig and initializationOptions', () => {
    it('sends nothing when nothing is set, so the daemon defaults apply', () => {
        const { config, problems } = readConfig(settings({}));
        assert.deepEqual(problems, []);
        assert.deepEqual(initializationOptions(config), {});
        assert.equal(config.path, '');
        assert.equal(config.terminalEnvironment, true);
        assert.equal(config.offerToDisableCheckOnSave, true);
    });

    it('passes stages, jobs, debounce, nice and the job timeout in camelCase', () => {
        const { config, problems } = readConfig(settings({
            stages: ['check', 'test'], jobs: 2, debounceMs: 0, nice: 19, jobTimeoutSecs: 600,
        }));
        assert.deepEqual(problems, []);
        assert.deepEqual(initializationOptions(config), {
            stages: ['check', 'test'], jobs: 2, debounceMs: 0, nice: 19, jobTimeoutSecs: 600,
        });
    });

    it('passes the linker and sccache, and names bad values', () => {
        const good = readConfig(settings({ linker: ' mold ', sccache: false }));
        assert.deepEqual(good.problems, []);
        assert.deepEqual(initializationOptions(good.config), { linker: 'mold', sccache: false });
        const bad = readConfig(settings({ linker: 7, sccache: 'yes' }));
        assert.deepEqual(initializationOptions(bad.config), {});
        assert.equal(bad.problems.length, 2);
        assert.match(bad.problems[0] ?? '', /buildd\.linker/);
        assert.match(bad.problems[1] ?? '', /buildd\.sccache/);
    });

    it('passes discoverWorkspaces, and names a bad value', () => {
        const off = readConfig(settings({ discoverWorkspaces: false }));
        assert.deepEqual(off.problems, []);
        assert.deepEqual(initializationOptions(off.config), { discoverWorkspaces: false });
        const bad = readConfig(settings({ discoverWorkspaces: 'no' }));
        assert.deepEqual(initializationOptions(bad.config), {});
        assert.match(bad.problems[0] ?? '', /buildd\.discoverWorkspaces/);
    });

    it('passes job definitions, cargoJobs and learn, and names a bad job definition', () => {
        const { config, problems } = readConfig(settings({
            jobs: {
                pedantic: { command: ['clippy', '--workspace', '--', '-W', 'clippy::pedantic'] },
                test: { enabled: false },
                'bad name': { command: ['check'] },
                empty: { command: [] },
            },
            cargoJobs: 3,
            learn: false,
        }));
        assert.deepEqual(initializationOptions(config), {
            jobs: {
                pedantic: { command: ['clippy', '--workspace', '--', '-W', 'clippy::pedantic'] },
                test: { enabled: false },
            },
            cargoJobs: 3,
            learn: false,
        });
        assert.deepEqual(problems.map((p) => p.split(' must ')[0]), ['buildd.jobs.bad name', 'buildd.jobs.empty']);
        assert.match(readConfig(settings({ learn: 'no' })).problems[0] ?? '', /buildd\.learn/);
    });

    it('keeps the order of the stages and drops repeats', () => {
        const { config } = readConfig(settings({ stages: ['test', 'build', 'test'] }));
        assert.deepEqual(config.stages, ['test', 'build']);
    });

    it('treats null (the settings default) as unset', () => {
        const { config, problems } = readConfig(settings({ stages: null, jobs: null, debounceMs: null }));
        assert.deepEqual(problems, []);
        assert.deepEqual(initializationOptions(config), {});
    });

    it('drops values the daemon would refuse, naming the setting', () => {
        const { config, problems } = readConfig(settings({
            stages: ['build', 'bench'], jobs: 0, debounceMs: 1.5, nice: 20, jobTimeoutSecs: 0,
        }));
        assert.deepEqual(initializationOptions(config), {});
        assert.deepEqual(problems.map((p) => p.split(';')[0]), [
            'buildd.stages must be a non-empty list of "check", "build", "test"',
            'buildd.jobs must be an integer of at least 1',
            'buildd.debounceMs must be an integer of at least 0',
            'buildd.nice must be an integer from 0 to 19',
            'buildd.jobTimeoutSecs must be an integer of at least 1',
        ]);
    });

    it('refuses an empty list of stages', () => {
        const { config, problems } = readConfig(settings({ stages: [] }));
        assert.equal(config.stages, undefined);
        assert.equal(problems.length, 1);
    });

    it('reads the switches', () => {
        const { config } = readConfig(settings({
            'terminal.environment': false,
            'rustAnalyzer.offerToDisableCheckOnSave': false,
            path: '  /opt/buildd  ',
        }));
        assert.equal(config.terminalEnvironment, false);
        assert.equal(config.offerToDisableCheckOnSave, false);
        assert.equal(config.path, '/opt/buildd');
    });

    it('restarts the server for the path or the initialization options, not for the terminal switch', () => {
        const base = readConfig(settings({ jobs: 2 })).config;
        assert.equal(needsRestart(base, readConfig(settings({ jobs: 2 })).config), false);
        assert.equal(needsRestart(base, readConfig(settings({ jobs: 3 })).config), true);
        assert.equal(needsRestart(base, readConfig(settings({ jobs: 2, stages: ['check'] })).config), true);
        assert.equal(needsRestart(base, readConfig(settings({ jobs: 2, debounceMs: 10 })).config), true);
        assert.equal(needsRestart(base, readConfig(settings({ jobs: 2, nice: 5 })).config), true);
        assert.equal(needsRestart(base, readConfig(settings({ jobs: 2, path: '/x/buildd' })).config), true);
        assert.equal(needsRestart(base, readConfig(settings({ jobs: 2, 'terminal.environment': false })).config), false);
    });
});

describe('resolveServerPath', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'buildd-ext-test-'));
    const binDir = path.join(dir, 'bin');
    fs.mkdirSync(binDir);
    const exe = path.join(binDir, 'buildd');
    fs.writeFileSync(exe, '#!/bin/sh\n', { mode: 0o755 });
    const notExe = path.join(dir, 'not-executable');
    fs.writeFileSync(notExe, '', { mode: 0o644 });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('finds buildd on PATH, skipping directories that do not have it', () => {
        const found = resolveServerPath({ setting: '', env: { PATH: [path.join(dir, 'none'), dir, binDir].join(path.delimiter) } });
        assert.deepEqual(found, { ok: true, path: exe, source: 'PATH' });
    });

    it('says how to install it when PATH has none', () => {
        const found = resolveServerPath({ setting: '', env: { PATH: dir } });
        assert.equal(found.ok, false);
        assert.ok(!found.ok && found.fix === 'install');
        assert.match(!found.ok ? found.message : '', /not found on PATH: install it .*or set buildd\.path/);
    });

    it('prefers the setting to PATH, and expands ~', () => {
        assert.deepEqual(
            resolveServerPath({ setting: exe, env: { PATH: '' } }),
            { ok: true, path: exe, source: 'setting' },
        );
        assert.deepEqual(
            resolveServerPath({ setting: '~/bin/buildd', env: {}, home: dir }),
            { ok: true, path: exe, source: 'setting' },
        );
    });

    it('reports a setting that is not an executable file, without falling back to PATH', () => {
        for (const setting of [notExe, binDir, path.join(dir, 'missing')]) {
            const found = resolveServerPath({ setting, env: { PATH: binDir } });
            assert.equal(found.ok, false, setting);
            assert.match(!found.ok ? found.message : '', /^buildd\.path is .*, which is not an executable file/);
        }
    });

    it('lets the environment override both, for tests', () => {
        assert.deepEqual(
            resolveServerPath({ setting: notExe, env: { [SERVER_PATH_ENV]: exe, PATH: '' } }),
            { ok: true, path: exe, source: 'env' },
        );
        const bad = resolveServerPath({ setting: exe, env: { [SERVER_PATH_ENV]: notExe } });
        assert.equal(bad.ok, false);
        assert.match(!bad.ok ? bad.message : '', /^\$BUILDD_SERVER_PATH is .*not an executable file/);
    });

    it('ignores an empty override', () => {
        assert.deepEqual(
            resolveServerPath({ setting: exe, env: { [SERVER_PATH_ENV]: '  ' } }),
            { ok: true, path: exe, source: 'setting' },
        );
    });
});
