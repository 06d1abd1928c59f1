// End to end in a real VS Code: code-server in headless Chromium, driven by playwright-core,
// with the packaged .vsix installed and the real `buildd lsp` (and so a real daemon and real
// cargo) behind it. It opens a workspace with a type error and checks what a user would see:
// the error in the Problems panel with source buildd, the status bar, the status view (with
// both workspaces of the folder), a fix in the editor clearing the error, rustc's quick fix
// from the light bulb and the rendered compiler output, and a warm terminal. Each step saves a screenshot to
// e2e/artifacts/.
//
// Run with `npm run e2e` (after `npm run package`). It needs the buildd binary: BUILDD_BIN, or
// ../target/debug/buildd (`cargo build -p buildd`). e2e/setup.sh installs code-server and
// Chromium, and caches code-server in ~/.cache/buildd-vscode-e2e (BUILDD_VSCODE_E2E_CACHE).
//
// Every wait is for a condition, with a deadline; nothing sleeps to synchronise.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const extensionDir = path.dirname(here);
const repo = path.dirname(extensionDir);
const artifacts = path.join(here, 'artifacts');
const vsix = path.join(extensionDir, 'dist', 'buildd.vsix');
const buildd = path.resolve(process.env.BUILDD_BIN ?? path.join(repo, 'target', 'debug', 'buildd'));

// Deadlines, generous for two shared cores: the first build compiles the fixture from nothing.
const SETUP_MS = 20 * 60_000;
const STEP_MS = 5 * 60_000;
const UI_MS = 60_000;
const BUILD_MS = 180_000;

const BROKEN_LINE = '    let answer: u32 = "forty-two";';
const FIXED_CODE = 'let answer: u32 = 42;';
const UNUSED_IMPORT = 'use std::collections::HashMap;';

let tmp;
let workspace;
let settingsFile;
let settings;
let buildHome;
let codeServer;
let codeServerLog;
let browser;
let page;
let shot = 0;

/** Saves the page as artifacts/NN-name.png and returns the path. */
async function screenshot(name) {
    shot += 1;
    const file = path.join(artifacts, `${String(shot).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file });
    console.log(`screenshot: ${path.relative(extensionDir, file)}`);
    return file;
}

function freePort() {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.on('error', reject);
        server.listen(0, '127.0.0.1', () => {
            const { port } = server.address();
            server.close(() => resolve(port));
        });
    });
}

/** Polls `check` until it returns a truthy value, or fails with `what` after `timeout` ms. */
async function waitFor(what, check, timeout) {
    const deadline = Date.now() + timeout;
    let last;
    for (;;) {
        try {
            const value = await check();
            if (value) {
                return value;
            }
        } catch (e) {
            last = e;
        }
        if (Date.now() > deadline) {
            throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
    }
}

function builddJson(...args) {
    return JSON.parse(execFileSync(buildd, args, { env: { ...process.env, BUILDD_HOME: buildHome }, encoding: 'utf8' }));
}

function escapeRegExp(text) {
    return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function withoutOverride(env) {
    const copy = { ...env };
    delete copy.BUILDD_SERVER_PATH;
    return copy;
}

function statusBarItem() {
    // Not VS Code's own progress item, which shows a job's `$/progress` as "buildd: ...".
    return page.locator('.statusbar-item:not([id="status.progress"])').filter({ hasText: /buildd:/ });
}

/** The text of an editor, with Monaco's non-breaking spaces read as spaces. */
async function editorText(locator) {
    return ((await locator.textContent()) ?? '').replace(/\u00a0/g, ' ');
}

/** A test step whose failure leaves a screenshot of what was on screen. */
function step(name, body) {
    it(name, { timeout: STEP_MS }, async () => {
        try {
            await body();
        } catch (e) {
            if (page) {
                await screenshot(`FAILED-${name.split(' ').slice(0, 4).join('-').toLowerCase()}`).catch(() => undefined);
            }
            throw e;
        }
    });
}

async function runCommand(title) {
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible', timeout: UI_MS });
    await input.fill(`>${title}`);
    const row = page.locator('.quick-input-list .monaco-list-row').filter({ hasText: title }).first();
    await row.waitFor({ state: 'visible', timeout: UI_MS });
    await page.keyboard.press('Enter');
    await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: UI_MS });
}

/**
 * The new terminal's input, once it has the keyboard focus. The workbench moves the focus to a
 * new terminal only when its view is ready, so keys typed straight after the command can land
 * in the editor that had the focus before (a fresh clone once typed `{` into the daemon log).
 * This waits for the focus, giving it to the terminal's input where the workbench has not yet.
 */
async function focusedTerminal() {
    const input = page.locator('.terminal-wrapper.active .xterm-helper-textarea, .integrated-terminal .xterm-helper-textarea').first();
    await input.waitFor({ state: 'attached', timeout: UI_MS });
    await waitFor('the terminal to have the keyboard focus', async () => {
        if (await input.evaluate((el) => el === el.ownerDocument.activeElement)) {
            return true;
        }
        await input.focus();
        return false;
    }, UI_MS);
    return input;
}

describe('the extension in code-server', { timeout: SETUP_MS + 8 * STEP_MS }, () => {
    before(async () => {
        fs.rmSync(artifacts, { recursive: true, force: true });
        fs.mkdirSync(artifacts, { recursive: true });
        assert.ok(fs.existsSync(vsix), `${vsix} is missing: run npm run package first`);
        assert.ok(fs.existsSync(buildd), `${buildd} is missing: run cargo build -p buildd, or set BUILDD_BIN`);
        // The real server or nothing: a buildd without the lsp subcommand fails here.
        try {
            execFileSync(buildd, ['lsp', '--help'], { stdio: 'pipe' });
        } catch (e) {
            throw new Error(`${buildd} has no working \`buildd lsp\`, which this test needs: ${e.stderr?.toString().split('\n')[0] ?? e.message}`);
        }

        const cache = execFileSync('bash', [path.join(here, 'setup.sh')], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' })
            .trim()
            .split('\n')
            .pop();
        const entry = path.join(cache, 'node_modules', 'code-server', 'out', 'node', 'entry.js');

        tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'buildd-vscode-e2e-'));
        workspace = path.join(tmp, 'typo');
        fs.cpSync(path.join(here, 'fixture'), workspace, { recursive: true });
        buildHome = path.join(tmp, 'buildd-home');
        const userData = path.join(tmp, 'user-data');
        const extensions = path.join(tmp, 'extensions');
        fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
        settingsFile = path.join(userData, 'User', 'settings.json');
        settings = {
            // The binary as a user would set it; a later step changes it.
            'buildd.path': buildd,
            'security.workspace.trust.enabled': false,
            'workbench.startupEditor': 'none',
            'workbench.tips.enabled': false,
            'workbench.enableExperiments': false,
            'telemetry.telemetryLevel': 'off',
            'extensions.autoCheckUpdates': false,
            'extensions.autoUpdate': false,
            'extensions.ignoreRecommendations': true,
            'chat.commandCenter.enabled': false,
            'workbench.secondarySideBar.defaultVisibility': 'hidden',
            'editor.autoClosingQuotes': 'never',
            'editor.autoClosingBrackets': 'never',
            'terminal.integrated.defaultProfile.linux': 'bash',
            'terminal.integrated.gpuAcceleration': 'off',
            // Shell integration would write its escape sequences into the output the test reads.
            'terminal.integrated.shellIntegration.enabled': false,
        };
        fs.writeFileSync(settingsFile, JSON.stringify(settings, null, 2));
        const config = path.join(tmp, 'code-server.yaml');
        fs.writeFileSync(config, '');
        const common = ['--config', config, '--user-data-dir', userData, '--extensions-dir', extensions];

        execFileSync(process.execPath, [entry, ...common, '--install-extension', vsix], { stdio: ['ignore', 'inherit', 'inherit'] });

        const port = await freePort();
        codeServerLog = path.join(artifacts, 'code-server.log');
        const log = fs.openSync(codeServerLog, 'w');
        codeServer = spawn(process.execPath, [
            entry, ...common,
            '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`,
            '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
            workspace,
        ], {
            // The extension host inherits this environment: a buildd home of the test's own, so
            // the test has its own daemon, and no override of buildd.path.
            env: { ...withoutOverride(process.env), BUILDD_HOME: buildHome, BUILDD_IDLE_TIMEOUT: '10m' },
            stdio: ['ignore', log, log],
            detached: true,
        });
        const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`;
        await waitFor('code-server to answer', async () => (await fetch(url, { redirect: 'manual' })).status < 500, UI_MS);

        browser = await chromium.launch({
            executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
            args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                '--disable-component-update', '--disable-sync'],
        });
        page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
        await page.goto(url);
        await page.locator('.monaco-workbench').waitFor({ timeout: UI_MS });
    }, { timeout: SETUP_MS });

    after(async () => {
        await browser?.close().catch(() => undefined);
        if (codeServer?.pid) {
            try {
                process.kill(-codeServer.pid, 'SIGTERM');
            } catch {
                // Already gone.
            }
        }
        if (buildHome && fs.existsSync(buildHome)) {
            try {
                execFileSync(buildd, ['--no-start', 'stop'], { env: { ...process.env, BUILDD_HOME: buildHome }, stdio: 'ignore' });
            } catch {
                // No daemon was running.
            }
            // The extension's and the daemon's logs, for whoever reads a failure.
            const logs = path.join(tmp, 'user-data', 'logs');
            if (fs.existsSync(logs)) {
                fs.cpSync(logs, path.join(artifacts, 'vscode-logs'), { recursive: true });
            }
            const daemonLogs = path.join(buildHome, 'state', 'logs');
            if (fs.existsSync(daemonLogs)) {
                fs.cpSync(daemonLogs, path.join(artifacts, 'daemon-logs'), { recursive: true });
            }
        }
        if (tmp) {
            fs.rmSync(tmp, { recursive: true, force: true });
        }
    });

    step('shows the type error in the Problems panel with source buildd', async () => {
        await statusBarItem().waitFor({ state: 'visible', timeout: UI_MS });
        await screenshot('extension-started');
        await page.keyboard.press('Control+Shift+M');
        const row = page.locator('.markers-panel .monaco-list-row').filter({ hasText: 'mismatched types' }).first();
        await row.waitFor({ state: 'visible', timeout: BUILD_MS });
        assert.equal((await row.locator('.marker-source').first().textContent())?.trim(), 'buildd');
        assert.match(await row.textContent(), /mismatched types[\s\S]*buildd[\s\S]*\[Ln 3, Col \d+\]/);
        await screenshot('problems-panel-error');
    });

    step('shows the failed state and its count in the status bar', async () => {
        const item = statusBarItem();
        await waitFor('the status bar to say 1 error', async () => /buildd: 1 error/.test(await item.textContent()), BUILD_MS);
        await item.hover();
        await page.locator('.monaco-hover, .workbench-hover').filter({ hasText: 'The last build failed' })
            .first().waitFor({ state: 'visible', timeout: UI_MS });
        await screenshot('status-bar-failed');
    });

    step('shows the status when the status bar item is clicked', async () => {
        await page.mouse.move(0, 0);
        await statusBarItem().click();
        const editor = page.locator('.editor-instance .view-lines').first();
        await waitFor('the status view', async () => {
            const text = await editorText(editor);
            // Both workspaces of the folder: the one at the folder, and the separate one inside.
            return text.includes('# buildd status') && text.includes(`## ${workspace}`) && text.includes('State: **failed**')
                && text.includes('mismatched types') && text.includes(`## ${path.join(workspace, 'tools', 'helper')}`);
        }, UI_MS);
        const tab = page.locator('.tabs-container .tab').filter({ hasText: 'buildd status' });
        await tab.waitFor({ state: 'visible', timeout: UI_MS });
        await screenshot('status-view');
    });

    step('clears the error once the file is fixed in the editor and saved', async () => {
        const file = path.join(workspace, 'src', 'main.rs');
        const line = fs.readFileSync(file, 'utf8').split('\n').indexOf(BROKEN_LINE) + 1;
        assert.ok(line > 0, 'the fixture has the broken line');

        // Open the file the way a user does: Quick Open, then its name.
        await page.keyboard.press('F1');
        const input = page.locator('.quick-input-widget input');
        await input.waitFor({ state: 'visible', timeout: UI_MS });
        await input.fill('main.rs');
        await page.locator('.quick-input-list .monaco-list-row').filter({ hasText: 'main.rs' }).first()
            .waitFor({ state: 'visible', timeout: UI_MS });
        await page.keyboard.press('Enter');
        const editor = page.locator('.editor-instance .monaco-editor').first();
        await waitFor('main.rs in the editor', async () => (await editorText(editor)).includes('let answer: u32 = "forty-two";'), UI_MS);

        // Go to the line, select its code and type the fix, as a user would.
        await editor.locator('.view-lines').click();
        await page.keyboard.press('Control+G');
        await input.waitFor({ state: 'visible', timeout: UI_MS });
        await input.fill(`:${line}`);
        await page.keyboard.press('Enter');
        await page.keyboard.press('End');
        await page.keyboard.press('Shift+Home');
        await page.keyboard.type(FIXED_CODE);
        await screenshot('editing-the-fix');
        await page.keyboard.press('Control+S');
        await waitFor('the fix to be saved', () => fs.readFileSync(file, 'utf8').includes(`    ${FIXED_CODE}\n`), UI_MS);

        await page.keyboard.press('Control+Shift+M');
        await page.locator('.markers-panel').filter({ hasText: 'No problems have been detected' })
            .waitFor({ state: 'visible', timeout: BUILD_MS });
        const item = statusBarItem();
        await waitFor('the status bar to say warm', async () => /buildd: warm/.test(await item.textContent()), BUILD_MS);
        assert.equal(await page.locator('.markers-panel .monaco-list-row').filter({ hasText: 'mismatched types' }).count(), 0);
        await screenshot('fixed-and-warm');
    });

    step('offers rustc\'s fix in the light bulb, shows the compiler output, and the fix clears the Problems panel', async () => {
        const file = path.join(workspace, 'src', 'main.rs');
        const editor = page.locator('.editor-instance .monaco-editor').first();
        // An unused import, typed and saved as a user would.
        await editor.locator('.view-lines').click();
        await page.keyboard.press('Control+Home');
        await page.keyboard.type(`${UNUSED_IMPORT}\n`);
        await page.keyboard.press('Control+S');
        await waitFor('the import to be saved', () => fs.readFileSync(file, 'utf8').startsWith(`${UNUSED_IMPORT}\n`), UI_MS);
        await page.keyboard.press('Control+Shift+M');
        const warning = page.locator('.markers-panel .monaco-list-row').filter({ hasText: 'unused import' }).first();
        await warning.waitFor({ state: 'visible', timeout: BUILD_MS });

        /** Puts the cursor in the import, clicks the light bulb, and picks `title` from its menu. */
        const pick = async (title) => {
            await editor.locator('.view-lines').click();
            await page.keyboard.press('Control+Home');
            for (let i = 0; i < 6; i++) {
                await page.keyboard.press('ArrowRight');
            }
            // VS Code draws the light bulb in the line's indentation, else on the line above or
            // below when that one has room, else in the gutter. It moves the bulb only
            // 250 ms after the cursor or the diagnostics last changed, and until then the bulb
            // of the last position stays where it was: with the early diagnostic shown at once,
            // a bulb left on line 3 by the previous step (the fixed `E0308`) was still there
            // and offered that error's output. So the bulb to click is the one on the import.
            const bulbs = editor.locator('[class*="codicon-gutter-lightbulb"]:visible, .lightBulbWidget:visible');
            const line = editor.locator('.view-line').filter({ hasText: 'collections::HashMap' }).first();
            const bulb = await waitFor('the light bulb of the import\'s line', async () => {
                const row = await line.boundingBox();
                if (!row) {
                    return null;
                }
                for (const candidate of await bulbs.all()) {
                    const box = await candidate.boundingBox();
                    const middle = box && box.y + box.height / 2;
                    if (box && middle >= row.y - row.height && middle < row.y + 2 * row.height) {
                        return candidate;
                    }
                }
                return null;
            }, UI_MS);
            await bulb.click();
            const row = page.locator('.action-widget .monaco-list-row').filter({ hasText: title }).first();
            await row.waitFor({ state: 'visible', timeout: UI_MS });
            await screenshot(`light-bulb-${title.split(' ')[0].toLowerCase()}`);
            // The menu blocks the mouse until it moves over it (a pointer block over the
            // editor); the keyboard picks as a user's arrows and Enter do.
            const focused = page.locator('.action-widget .monaco-list-row.focused');
            await waitFor(`"${title}" to be selected in the menu`, async () => {
                if ((await focused.getAttribute('aria-label', { timeout: 1000 }).catch(() => null)) === title) {
                    return true;
                }
                await page.keyboard.press('ArrowDown');
                return false;
            }, UI_MS);
            await page.keyboard.press('Enter');
        };

        await pick('Show the full compiler output (buildd)');
        const rendered = page.locator('.editor-instance .view-lines').filter({ hasText: 'warning: unused import' }).first();
        await waitFor('the rendered compiler output', async () => {
            const text = await editorText(rendered);
            return text.includes('warning: unused import: `std::collections::HashMap`') && text.includes('--> src/main.rs:1:5');
        }, UI_MS);
        await page.locator('.tabs-container .tab').filter({ hasText: '(buildd).txt' }).first()
            .waitFor({ state: 'visible', timeout: UI_MS });
        await screenshot('rendered-output');

        await pick('remove the whole `use` item');
        await waitFor('the fix in the editor', async () => !(await editorText(editor)).includes('HashMap'), UI_MS);
        await page.keyboard.press('Control+S');
        await waitFor('the fix to be saved', () => !fs.readFileSync(file, 'utf8').includes('HashMap'), UI_MS);
        await page.keyboard.press('Control+Shift+M');
        await page.locator('.markers-panel').filter({ hasText: 'No problems have been detected' })
            .waitFor({ state: 'visible', timeout: BUILD_MS });
        await screenshot('quick-fix-applied');
    });

    step('rebuilds from the command palette, and opens the daemon log', async () => {
        const before = builddJson('--no-start', 'status', '--json').workspaces.find((w) => w.root === workspace);
        assert.ok(before?.last_job, 'a job has run');
        await runCommand('buildd: Rebuild the Workspace');
        const after = await waitFor('a new job to finish', () => {
            const w = builddJson('--no-start', 'status', '--json').workspaces.find((x) => x.root === workspace);
            return w?.last_job && w.last_job.id > before.last_job.id && w.state === 'idle' && w;
        }, BUILD_MS);
        assert.equal(after.last_job.result, 'success');
        await waitFor('the status bar to say warm', async () => /buildd: warm/.test(await statusBarItem().textContent()), BUILD_MS);

        const report = builddJson('--no-start', 'status', '--json');
        await runCommand('buildd: Open the Daemon Log');
        const logName = path.basename(report.daemon.log_path);
        await page.locator('.tabs-container .tab.active').filter({ hasText: logName }).waitFor({ state: 'visible', timeout: UI_MS });
        const editor = page.locator('.editor-instance .view-lines').first();
        await waitFor('the log in the editor', async () => (await editorText(editor)).includes('INFO'), UI_MS);
        await screenshot('daemon-log');
    });

    step('gives the integrated terminal the warm environment, so plain cargo compiles nothing', async () => {
        const report = builddJson('--no-start', 'status', '--json');
        const ws = report.workspaces.find((w) => w.root === workspace);
        assert.ok(ws?.target_dir, `the daemon has a target dir for ${workspace}`);
        assert.equal(ws.state, 'idle');

        const out = path.join(tmp, 'terminal-out.txt');
        await runCommand('Terminal: Create New Terminal');
        const terminal = await focusedTerminal();
        // What a user types; the output is also copied to a file for the test to read, since
        // the terminal draws its text on a canvas.
        await terminal.pressSequentially(`{ echo "CARGO_TARGET_DIR=$CARGO_TARGET_DIR"; cargo build --offline; echo "exit=$?"; } 2>&1 | tee ${out}\n`);
        const text = await waitFor('cargo to finish in the terminal', () => {
            const t = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
            return /exit=\d+/.test(t) && t;
        }, BUILD_MS);
        await screenshot('terminal-warm-cargo');
        assert.match(text, new RegExp(`^CARGO_TARGET_DIR=${escapeRegExp(ws.target_dir)}$`, 'm'));
        assert.match(text, /exit=0/);
        assert.match(text, /Finished/);
        assert.doesNotMatch(text, /Compiling typo/, 'the daemon had already built it');
    });

    step('restarts on a change of buildd.path, and says how to fix a missing binary', async () => {
        // buildd.path is a machine setting: in code-server it is set in the Remote tab of the
        // settings editor, where it overrides the user settings file.
        await runCommand('Preferences: Open Remote Settings');
        await page.locator('.settings-editor').waitFor({ state: 'visible', timeout: UI_MS });
        await page.keyboard.type('buildd.path');
        const box = page.locator('.setting-item').filter({ hasText: 'Path to the' }).locator('input[aria-label="buildd.path"]');
        await box.waitFor({ state: 'visible', timeout: UI_MS });

        const missing = path.join(tmp, 'no-such-dir', 'buildd');
        await box.fill(missing);
        const toast = page.locator('.notifications-toasts .notification-toast').filter({ hasText: 'which is not an executable file' });
        await toast.waitFor({ state: 'visible', timeout: UI_MS });
        assert.match(await toast.textContent(), new RegExp(`buildd\\.path is ${escapeRegExp(missing)}, which is not an executable file: set it to the buildd binary`));
        await waitFor('the status bar to say stopped', async () => /buildd: stopped/.test(await statusBarItem().textContent()), UI_MS);
        await screenshot('missing-binary');

        await box.fill(buildd);
        await waitFor('the status bar to say warm again', async () => /buildd: warm/.test(await statusBarItem().textContent()), BUILD_MS);
        await screenshot('restarted-warm');
    });
});
