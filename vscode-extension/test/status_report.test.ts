import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { StatusReport, WorkspaceStatus } from '../src/protocol';
import { bytes, duration, renderStatus } from '../src/status_report';

// The example of `buildd status --json` in docs/protocol.md.
const REPORT: StatusReport = {
    daemon: {
        pid: 4242, version: '0.1.0', protocol: 1, uptime_secs: 73,
        socket: '/run/user/1000/buildd/daemon.sock',
        log_path: '/home/me/.local/state/buildd/logs/buildd.2026-11-22.log',
        cache_dir: '/home/me/.cache/buildd',
        idle_timeout_secs: 10800, clients: 1,
    },
    workspaces: [
        {
            root: '/home/me/src/app',
            state: 'failed',
            error: null,
            target_dir: '/home/me/.cache/buildd/targets/app-1a2b3c4d5e6f/9f8e7d6c5b4a3928',
            target_dir_size: 39321600,
            key: {
                hash: '9f8e7d6c5b4a3928', rustc: 'rustc 1.95.0 (59807616e 2026-04-14)',
                host: 'x86_64-unknown-linux-gnu', target: 'x86_64-unknown-linux-gnu',
                profile: 'dev', features: 'default', env: { RUSTFLAGS: '-Cforce-frame-pointers=yes' },
                linker: 'default', fast_link: false,
            },
            last_change: { files: ['/home/me/src/app/util/src/lib.rs'], predicted: ['util', 'app'], full: false },
            current_job: null,
            last_job: {
                id: 7, stages: ['build', 'test'], result: 'failed', duration_ms: 1840,
                units_compiled: 2, errors: 1, warnings: 0, rebuilt: ['util'], failure: null,
            },
            jobs_started: 7,
            prediction: { jobs: 5, precision: 1.0, recall: 1.0 },
            watcher: { kind: 'native', rescans: 0, note: null },
            last_tests: null,
            diagnostics: [
                { file: '/home/me/src/app/util/src/lib.rs', line: 2, column: 5, severity: 'error', message: 'mismatched types' },
            ],
            cargo_env: null,
            seed: null,
            linker: null,
            fast_link: null,
            sccache: null,
            waiting_for: null,
            jobs: [],
            other_keys: [],
            early: null,
        },
    ],
    cache: null,
    sccache: null,
};

describe('renderStatus', () => {
    it('renders the documented example readably', () => {
        assert.equal(renderStatus(REPORT), [
            '# buildd status',
            '',
            'Daemon 0.1.0 (protocol 1), pid 4242, up 1m 13s, 1 client; stops after 3h 00m idle.',
            '',
            '- log: `/home/me/.local/state/buildd/logs/buildd.2026-11-22.log`',
            '- cache: `/home/me/.cache/buildd`',
            '- socket: `/run/user/1000/buildd/daemon.sock`',
            '',
            '## /home/me/src/app',
            '',
            'State: **failed**',
            '',
            '- last change: `/home/me/src/app/util/src/lib.rs`; rebuilds util, app',
            '- last job: #7 (build, test) failed in 1.8s, 2 units compiled, 1 error, 0 warnings',
            '- rebuilt: util',
            '- target dir: `/home/me/.cache/buildd/targets/app-1a2b3c4d5e6f/9f8e7d6c5b4a3928` (37.5 MiB)',
            '- build key 9f8e7d6c5b4a3928: rustc 1.95.0 (59807616e 2026-04-14), x86_64-unknown-linux-gnu, dev, '
                + 'features default, RUSTFLAGS=-Cforce-frame-pointers=yes',
            '',
            '### Diagnostics',
            '',
            '- error: `/home/me/src/app/util/src/lib.rs:2:5` mismatched types',
            '',
        ].join('\n'));
    });

    it('shows a workspace that cannot be built and has no job yet', () => {
        const text = renderStatus({
            ...REPORT,
            workspaces: [{
                ...REPORT.workspaces[0],
                root: '/w/broken', state: 'error', error: 'failed to parse manifest at /w/broken/Cargo.toml',
                target_dir: null, target_dir_size: null, key: null, last_change: null, last_job: null, diagnostics: [],
            }],
        });
        assert.match(text, /## \/w\/broken\n\nState: \*\*cannot be built\*\*\n\nError: failed to parse manifest at \/w\/broken\/Cargo\.toml\n\n- no job has finished yet\n$/);
    });

    it('shows the first line of cargo\'s own failure', () => {
        const job = { ...REPORT.workspaces[0].last_job!, failure: 'error: no matching package named `nope` found\nlocation searched: crates.io' };
        const text = renderStatus({ ...REPORT, workspaces: [{ ...REPORT.workspaces[0], last_job: job }] });
        assert.match(text, /\n- cargo failed: error: no matching package named `nope` found\n/);
        assert.doesNotMatch(text, /location searched/);
    });

    it('shows the last test run of a watch loop, with its failing tests', () => {
        const text = renderStatus({
            ...REPORT,
            workspaces: [{
                ...REPORT.workspaces[0],
                last_tests: {
                    job: 7, runner: 'cargo test', passed: 3, failed: 1, ignored: 0, duration_ms: 420, exit_code: 101,
                    failing: [{ name: 'tests::adds', file: '/home/me/src/app/util/src/lib.rs', line: 9, column: 5, message: 'assertion failed\nleft: 1' }],
                },
            }],
        });
        assert.match(text, /\n- last tests \(cargo test, job #7\): 3 passed, 1 failed, 0 ignored in 420ms\n {2}- failing: tests::adds at `\/home\/me\/src\/app\/util\/src\/lib\.rs:9`: assertion failed\n/);
    });

    it('shows the running job and a degraded watcher', () => {
        const text = renderStatus({
            ...REPORT,
            workspaces: [{
                ...REPORT.workspaces[0],
                state: 'running',
                current_job: { id: 8, stages: ['build', 'test'], stage: 'test', units_done: 3, expected_units: 6 },
                last_change: { files: ['/a', '/b'], predicted: [], full: true },
                watcher: { kind: 'poll', rescans: 2, note: 'inotify watches ran out: raise fs.inotify.max_user_watches' },
            }],
        });
        assert.match(text, /\n- running: job #8 \(build, test\), stage test, 3 units so far\n- last change: 2 files; rebuilds everything\n/);
        assert.match(text, /\n- watcher: poll: inotify watches ran out: raise fs\.inotify\.max_user_watches\n/);
    });

    it('reads a status from a daemon without the newer fields', () => {
        // The generated types say what this daemon sends; an older one sent less.
        const old: Partial<WorkspaceStatus> = { ...REPORT.workspaces[0] };
        delete old.last_change;
        delete old.current_job;
        delete old.watcher;
        delete old.jobs_started;
        delete old.prediction;
        assert.match(renderStatus({ ...REPORT, workspaces: [old as WorkspaceStatus] }), /State: \*\*failed\*\*/);
    });

    it('says when no workspace is registered', () => {
        assert.match(renderStatus({ ...REPORT, workspaces: [] }), /No workspace is registered\./);
    });
});

describe('duration and bytes', () => {
    it('reads naturally', () => {
        assert.equal(duration(850), '850ms');
        assert.equal(duration(12_345), '12.3s');
        assert.equal(duration(245_000), '4m 05s');
        assert.equal(duration(10_800_000), '3h 00m');
        assert.equal(bytes(512), '512 B');
        assert.equal(bytes(39321600), '37.5 MiB');
        assert.equal(bytes(3 * 1024 ** 3), '3.0 GiB');
    });
});
