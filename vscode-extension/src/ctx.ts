/**
 * The extension's state: the `Ctx` owns the language client, the status bar item, the latest
 * `buildd/state` of each workspace, and the terminals' warm environment. `restart` is the single
 * entry point that (re)starts the server; activation, the restart command and a change of
 * settings all go through it.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';

import * as vscode from 'vscode';
import {
    CloseAction,
    ErrorAction,
    ExecuteCommandRequest,
    LanguageClient,
    LanguageClientOptions,
    RevealOutputChannelOn,
    State,
} from 'vscode-languageclient/node';

import { crashMessage, lastError, startFailureMessage, Tail } from './failure';
import { Config, initializationOptions, needsRestart, readConfig, resolveServerPath } from './config';
import {
    DaemonLink,
    SHOW_RENDERED_COMMAND,
    STATE_NOTIFICATION,
    STATUS_REQUEST,
    StateParams,
    StatusParams,
    StatusReport,
} from './protocol';
import { RenderedView } from './rendered_view';
import { ServerStatus, statusBarView } from './status_bar';
import {
    applyToCollection,
    BuilddEnvError,
    EXIT_NOT_A_WORKSPACE,
    fetchWarmEnv,
    WarmEnv,
} from './terminal_env';

/** How long the daemon may stay down before a notification says so. */
const DAEMON_DOWN_GRACE_MS = 10_000;

export class Ctx implements vscode.Disposable {
    private client: LanguageClient | undefined;
    private serverPath: string | undefined;
    private config: Config;
    private serverStatus: ServerStatus = { kind: 'starting' };
    /** The latest `buildd/state` per workspace root. */
    private readonly states = new Map<string, StateParams>();
    private daemon: DaemonLink | undefined;
    private daemonDownTimer: NodeJS.Timeout | undefined;
    /**
     * Whether "daemon down" is news: the daemon was up since the server started, or has been
     * down longer than the grace. Before that, buildd lsp is still connecting (and starting the
     * daemon), and the status bar says so instead.
     */
    private daemonDownIsNews = false;
    /** The daemon's log, remembered so it can be opened when the daemon is gone. */
    private logPath: string | undefined;
    /** Increases on every (re)start, so an old client's late events are ignored. */
    private generation = 0;
    /** Increases on every terminal environment refresh; only the latest one applies. */
    private envGeneration = 0;
    /** The target dir each root's terminal environment was last refreshed for. */
    private readonly envTargetDirs = new Map<string, string | null>();
    private readonly statusBar: vscode.StatusBarItem;
    private readonly rendered = new RenderedView();
    readonly output: vscode.LogOutputChannel;
    private readonly disposables: vscode.Disposable[] = [];

    constructor(private readonly extension: vscode.ExtensionContext) {
        this.output = vscode.window.createOutputChannel('buildd', { log: true });
        this.statusBar = vscode.window.createStatusBarItem('buildd.status', vscode.StatusBarAlignment.Left, 10);
        this.statusBar.name = 'buildd';
        this.statusBar.command = 'buildd.showStatus';
        this.config = readConfig((key) => vscode.workspace.getConfiguration('buildd').get(key)).config;
        this.disposables.push(
            this.output,
            this.statusBar,
            this.rendered,
            vscode.window.onDidChangeActiveTextEditor(() => this.render()),
            vscode.workspace.onDidChangeConfiguration((e) => this.onConfigChange(e)),
            vscode.workspace.onDidChangeWorkspaceFolders(() => void this.refreshTerminalEnv()),
        );
        this.render();
        this.statusBar.show();
    }

    get resolvedConfig(): Config {
        return this.config;
    }

    /**
     * Stops the running server, if any, re-reads the settings and starts `buildd lsp` again.
     * Failures become a notification that says what to do, and the status bar's "stopped".
     */
    async restart(): Promise<void> {
        const generation = ++this.generation;
        await this.stopClient();
        if (generation !== this.generation) {
            // Another restart began while this one stopped the old client: it wins.
            return;
        }
        this.states.clear();
        this.daemon = undefined;
        this.daemonDownIsNews = false;
        clearTimeout(this.daemonDownTimer);
        this.setServerStatus({ kind: 'starting' });

        const resolved = readConfig((key) => vscode.workspace.getConfiguration('buildd').get(key));
        this.config = resolved.config;
        for (const problem of resolved.problems) {
            this.output.warn(problem);
            void vscode.window.showWarningMessage(`buildd: ${problem}.`, 'Open Settings').then((choice) => {
                if (choice) {
                    void vscode.commands.executeCommand('workbench.action.openSettings', 'buildd');
                }
            });
        }

        const server = resolveServerPath({ setting: this.config.path, env: process.env });
        if (!server.ok) {
            this.serverPath = undefined;
            this.output.error(server.message);
            this.setServerStatus({ kind: 'stopped', reason: server.message });
            const action = server.fix === 'install' ? 'Set buildd.path' : 'Open Settings';
            void vscode.window.showErrorMessage(`buildd: ${server.message}.`, action, 'Retry').then((choice) => {
                if (choice === 'Retry') {
                    void this.restart();
                } else if (choice) {
                    void vscode.commands.executeCommand('workbench.action.openSettings', 'buildd.path');
                }
            });
            return;
        }
        this.serverPath = server.path;
        this.output.info(`starting ${server.path} lsp (from ${server.source}) with ${JSON.stringify(initializationOptions(this.config))}`);

        const serverPath = server.path;
        const stderr = new Tail();
        let exited: Promise<void> = Promise.resolve();
        // The server is spawned here rather than by the client, so that its stderr (which the
        // client also copies to the output channel) can be quoted when it fails.
        const spawnServer = (): Promise<ChildProcess> => {
            const child = spawn(serverPath, ['lsp'], { env: process.env, stdio: 'pipe' });
            child.stderr.setEncoding('utf8');
            child.stderr.on('data', (chunk: string) => stderr.push(chunk));
            exited = new Promise((resolve) => child.on('close', () => resolve()));
            return Promise.resolve(child);
        };
        let started = false;
        const crashes: number[] = [];
        const clientOptions: LanguageClientOptions = {
            // The server learns of saves through these documents; its diagnostics are published
            // for any file of the workspace, whatever the selector.
            documentSelector: [
                { scheme: 'file', language: 'rust' },
                { scheme: 'file', pattern: '**/Cargo.toml' },
                { scheme: 'file', pattern: '**/Cargo.lock' },
                { scheme: 'file', pattern: '**/buildd.toml' },
            ],
            initializationOptions: initializationOptions(this.config),
            outputChannel: this.output,
            revealOutputChannelOn: RevealOutputChannelOn.Never,
            diagnosticCollectionName: 'buildd',
            middleware: {
                // The client registered the server's commands; this one opens a document here
                // instead of going to the server (see rendered_view.ts).
                executeCommand: async (command, args, next): Promise<unknown> => {
                    if (command !== SHOW_RENDERED_COMMAND) {
                        return (await next(command, args)) as unknown;
                    }
                    try {
                        await this.rendered.show(args);
                    } catch (e) {
                        void vscode.window.showErrorMessage(`buildd: ${e instanceof Error ? e.message : String(e)}`);
                    }
                    return undefined;
                },
            },
            initializationFailedHandler: (error) => {
                this.output.error(`buildd lsp failed to initialize: ${String(error)}`);
                return false;
            },
            errorHandler: {
                error: (_error, _message, count) => ({
                    action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown,
                    handled: true,
                }),
                closed: () => {
                    if (!started || generation !== this.generation) {
                        // A failed start is reported once, by restart() below.
                        return { action: CloseAction.DoNotRestart, handled: true };
                    }
                    const now = Date.now();
                    crashes.push(now);
                    while (crashes.length > 0 && crashes[0] < now - 3 * 60_000) {
                        crashes.shift();
                    }
                    const again = crashes.length <= 3;
                    this.reportCrash(crashMessage(stderr.text(), crashes.length, again), again);
                    return { action: again ? CloseAction.Restart : CloseAction.DoNotRestart, handled: true };
                },
            },
        };
        const client = new BuilddClient('buildd', 'buildd', spawnServer, clientOptions);
        this.client = client;
        client.onNotification(STATE_NOTIFICATION, (params: StateParams) => {
            if (generation === this.generation) {
                this.onState(params);
            }
        });
        client.onDidChangeState((e) => {
            if (generation !== this.generation) {
                return;
            }
            if (e.newState === State.Running) {
                this.setServerStatus({ kind: 'running' });
            } else if (e.newState === State.Stopped && this.serverStatus.kind === 'running') {
                this.setServerStatus({ kind: 'stopped', reason: lastError(stderr.text()) ?? 'buildd lsp stopped' });
            }
        });

        try {
            await client.start();
            started = true;
        } catch (e) {
            // The client notices a broken pipe before the process has written (and closed)
            // its stderr: give it a moment to finish saying why.
            await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))]);
            if (generation !== this.generation) {
                return;
            }
            const message = startFailureMessage(serverPath, stderr.text(), e instanceof Error ? e.message : String(e));
            this.output.error(message);
            this.setServerStatus({ kind: 'stopped', reason: message });
            void vscode.window.showErrorMessage(message, 'Show Output', 'Restart').then((choice) => {
                if (choice === 'Show Output') {
                    this.output.show();
                } else if (choice === 'Restart') {
                    void this.restart();
                }
            });
            return;
        }
        if (generation !== this.generation) {
            return;
        }
        this.setServerStatus({ kind: 'running' });
        void this.refreshTerminalEnv();
    }

    private reportDaemonDown(): void {
        const why = [...this.states.values()].find((s) => s.daemon === 'down' && s.error)?.error;
        const message = `buildd: the daemon has been down for ${DAEMON_DOWN_GRACE_MS / 1000} seconds, so nothing is `
            + `being built${why ? ` (${why})` : ''}. \`buildd status\` in a terminal says why, and the daemon's log `
            + 'has the details; restarting buildd starts a new daemon.';
        this.output.error(message);
        void vscode.window.showErrorMessage(message, 'Open Daemon Log', 'Restart').then((choice) => {
            if (choice === 'Open Daemon Log') {
                void vscode.commands.executeCommand('buildd.openLog');
            } else if (choice === 'Restart') {
                void this.restart();
            }
        });
    }

    private reportCrash(message: string, restarted: boolean): void {
        this.output.error(message);
        const actions = restarted ? ['Show Output'] : ['Show Output', 'Restart'];
        void vscode.window.showErrorMessage(message, ...actions).then((choice) => {
            if (choice === 'Show Output') {
                this.output.show();
            } else if (choice === 'Restart') {
                void this.restart();
            }
        });
    }

    private async stopClient(): Promise<void> {
        const client = this.client;
        this.client = undefined;
        if (client === undefined) {
            return;
        }
        try {
            if (client.isRunning()) {
                await client.stop(5000);
            }
        } catch (e) {
            this.output.warn(`stopping buildd lsp: ${String(e)}`);
        }
        await client.dispose().catch(() => undefined);
    }

    private onState(params: StateParams): void {
        this.states.set(params.root, params);
        const wasDown = this.daemon === 'down';
        this.daemon = params.daemon;
        if (params.daemon === 'up') {
            this.daemonDownIsNews = true;
            if (this.logPath === undefined) {
                // Remembered now, so that the log can be opened when the daemon has stopped.
                this.logPath = '';
                this.status().catch((e) => {
                    this.logPath = undefined;
                    this.output.warn(`buildd/status failed: ${String(e)}`);
                });
            }
        }
        if (params.daemon === 'down' && !wasDown) {
            this.output.warn(`the daemon is down${params.error ? `: ${params.error}` : ''}`);
            // buildd lsp reconnects by itself, starting a new daemon when it can (after a
            // `buildd stop`, or an upgrade): only a daemon that stays down is worth a
            // notification. The status bar says "daemon down" at once.
            clearTimeout(this.daemonDownTimer);
            const generation = this.generation;
            this.daemonDownTimer = setTimeout(() => {
                if (generation === this.generation && this.daemon === 'down') {
                    this.daemonDownIsNews = true;
                    this.render();
                    this.reportDaemonDown();
                }
            }, DAEMON_DOWN_GRACE_MS);
        }
        if (params.targetDir !== null && this.envTargetDirs.get(params.root) !== params.targetDir) {
            // Noted before the refresh, so that the states that follow do not start another.
            this.envTargetDirs.set(params.root, params.targetDir);
            void this.refreshTerminalEnv();
        }
        this.render();
    }

    private setServerStatus(status: ServerStatus): void {
        this.serverStatus = status;
        this.render();
    }

    private render(): void {
        const active = vscode.window.activeTextEditor?.document.uri;
        const view = statusBarView(
            this.serverStatus,
            [...this.states.values()],
            active?.scheme === 'file' ? active.fsPath : undefined,
            this.daemonDownIsNews,
        );
        this.statusBar.text = view.text;
        this.statusBar.tooltip = view.tooltip;
        this.statusBar.backgroundColor = view.background === undefined
            ? undefined
            : new vscode.ThemeColor(`statusBarItem.${view.background}Background`);
    }

    private onConfigChange(e: vscode.ConfigurationChangeEvent): void {
        if (!e.affectsConfiguration('buildd')) {
            return;
        }
        const next = readConfig((key) => vscode.workspace.getConfiguration('buildd').get(key)).config;
        if (needsRestart(this.config, next)) {
            this.output.info('settings changed: restarting buildd lsp');
            void this.restart();
        } else {
            this.config = next;
            void this.refreshTerminalEnv();
        }
    }

    /** `buildd/status` from the server, or `buildd status --json` when the server is not running. */
    async status(uri?: vscode.Uri): Promise<StatusReport> {
        const params: StatusParams = uri === undefined ? {} : { uri: uri.toString() };
        if (this.client?.isRunning()) {
            const report = await this.client.sendRequest<StatusReport>(STATUS_REQUEST, params);
            this.logPath = report.daemon.log_path;
            return report;
        }
        if (this.serverPath === undefined) {
            throw new Error('the buildd binary was not found; set buildd.path and restart buildd');
        }
        const report = await cliStatus(this.serverPath);
        this.logPath = report.daemon.log_path;
        return report;
    }

    /** The last known daemon log path, for when the daemon cannot be asked. */
    get knownLogPath(): string | undefined {
        return this.logPath || undefined;
    }

    /** Runs one of the server's `workspace/executeCommand` commands on a workspace. */
    async executeServerCommand(command: string, uri: vscode.Uri | undefined): Promise<void> {
        if (!this.client?.isRunning()) {
            throw new Error('buildd is not running; run "buildd: Restart the Server"');
        }
        await this.client.sendRequest(ExecuteCommandRequest.type, {
            command,
            arguments: uri === undefined ? [] : [uri.toString()],
        });
    }

    /** The warm environment of a folder, from `buildd env`. */
    async warmEnv(folder: vscode.Uri): Promise<WarmEnv> {
        if (this.serverPath === undefined) {
            throw new Error('the buildd binary was not found; set buildd.path and restart buildd');
        }
        return fetchWarmEnv(this.serverPath, folder.fsPath, { env: process.env });
    }

    /**
     * Gives the integrated terminals of each workspace folder the warm environment, through the
     * extension's environment variable collection scoped to the folder, or removes it when
     * `buildd.terminal.environment` is off. A folder outside every cargo workspace gets nothing.
     */
    async refreshTerminalEnv(): Promise<void> {
        const generation = ++this.envGeneration;
        const global = this.extension.environmentVariableCollection;
        const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file');
        const clearAll = () => {
            for (const f of folders) {
                global.getScoped({ workspaceFolder: f }).clear();
            }
            global.clear();
            this.envTargetDirs.clear();
        };
        if (!this.config.terminalEnvironment || this.serverPath === undefined) {
            clearAll();
            return;
        }
        for (const folder of folders) {
            const scoped = global.getScoped({ workspaceFolder: folder });
            try {
                const env = await this.warmEnv(folder.uri);
                if (generation !== this.envGeneration) {
                    return;
                }
                const targetDir = env.set.find(([name]) => name === 'CARGO_TARGET_DIR')?.[1] ?? null;
                applyToCollection(
                    scoped,
                    env,
                    process.env,
                    `buildd: cargo uses the warm target dir${targetDir ? ` ${targetDir}` : ''}`,
                );
                this.output.info(`terminal environment of ${folder.uri.fsPath}: ${env.set.map(([k, v]) => `${k}=${v}`).join(' ')}`);
            } catch (e) {
                if (generation !== this.envGeneration) {
                    return;
                }
                scoped.clear();
                if (e instanceof BuilddEnvError && e.exitCode === EXIT_NOT_A_WORKSPACE) {
                    this.output.info(`${folder.uri.fsPath} is not in a cargo workspace: its terminals are left as they are`);
                } else {
                    this.output.warn(`no warm environment for the terminals of ${folder.uri.fsPath}: ${String(e)}`);
                }
            }
        }
    }

    async dispose(): Promise<void> {
        this.generation++;
        clearTimeout(this.daemonDownTimer);
        await this.stopClient();
        for (const d of this.disposables) {
            d.dispose();
        }
    }
}

/**
 * The language client, with its own notifications turned into log lines: every failure of
 * `buildd lsp` is reported once by the `Ctx`, in buildd's words and with what to do, instead
 * of the client's generic "couldn't create connection to server" and "crashed 5 times".
 */
class BuilddClient extends LanguageClient {
    override error(message: string, data?: unknown): void {
        super.error(message, data, false);
    }
}

/** `buildd --no-start status --json`: the status without the server, and without starting a daemon. */
function cliStatus(buildd: string): Promise<StatusReport> {
    return new Promise((resolve, reject) => {
        execFile(buildd, ['--no-start', 'status', '--json'], { env: process.env, timeout: 30_000 }, (error, stdout, stderr) => {
            if (error) {
                reject(new Error(stderr.trim() || error.message));
                return;
            }
            try {
                resolve(JSON.parse(stdout) as StatusReport);
            } catch (e) {
                reject(e instanceof Error ? e : new Error(String(e)));
            }
        });
    });
}
