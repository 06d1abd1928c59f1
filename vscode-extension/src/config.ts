/**
 * The extension's settings: the raw values VS Code holds under `buildd.*`, resolved once into
 * a `Config`, and the `initializationOptions` and server path that follow from it.
 *
 * This module does not import `vscode`: the caller hands it a getter for the raw values, so the
 * resolution is unit-tested with plain objects. A setting with a value the daemon would refuse
 * is dropped (the daemon's default applies) and reported as a problem for the user to fix,
 * rather than sent and turned into a failed start.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { InitializationOptions, JobDefinition, Stage, STAGES } from './protocol';

/** The environment variable that overrides the server path, for tests and development. */
export const SERVER_PATH_ENV = 'BUILDD_SERVER_PATH';

/** The settings, resolved. `undefined` means "the daemon's default". */
export interface Config {
    /** `buildd.path`: empty means "buildd from PATH". */
    path: string;
    stages: Stage[] | undefined;
    /** cargo's `--jobs` (the old meaning of `buildd.jobs` as a number). */
    jobs: number | undefined;
    /** `buildd.jobs` as an object: job definitions by name. */
    jobDefinitions: Record<string, JobDefinition> | undefined;
    /** `buildd.cargoJobs`: cargo's `--jobs`. */
    cargoJobs: number | undefined;
    /** `buildd.learn`: keep the `buildd cargo` commands you run warm too. */
    learn: boolean | undefined;
    debounceMs: number | undefined;
    nice: number | undefined;
    jobTimeoutSecs: number | undefined;
    /** `auto`, `default`, `mold`, `lld`, `bfd` or a path to a linker driver. */
    linker: string | undefined;
    /** `false` keeps buildd's sccache out of this workspace's builds. */
    sccache: boolean | undefined;
    /** `false` registers each folder's own workspace only, not those found under it. */
    discoverWorkspaces: boolean | undefined;
    /** `buildd.terminal.environment`: give the workspace's terminals the warm environment. */
    terminalEnvironment: boolean;
    /** `buildd.rustAnalyzer.offerToDisableCheckOnSave`. */
    offerToDisableCheckOnSave: boolean;
}

export interface Resolved {
    config: Config;
    /** One sentence per setting that was ignored, naming the setting and the fix. */
    problems: string[];
}

/** Resolves the raw settings; `get` is `workspace.getConfiguration('buildd').get`. */
export function readConfig(get: (key: string) => unknown): Resolved {
    const problems: string[] = [];

    const rawPath = get('path');
    const serverPath = typeof rawPath === 'string' ? rawPath.trim() : '';

    let stages: Stage[] | undefined;
    const rawStages = get('stages');
    if (rawStages !== undefined && rawStages !== null) {
        const valid = Array.isArray(rawStages)
            && rawStages.length > 0
            && rawStages.every((s) => (STAGES as readonly unknown[]).includes(s));
        if (valid) {
            // Keep the user's order (it is the order the stages run in), without repeats.
            stages = [...new Set(rawStages as Stage[])];
        } else {
            problems.push(
                `buildd.stages must be a non-empty list of ${STAGES.map((s) => `"${s}"`).join(', ')}; `
                + 'the daemon\'s default ["build", "test"] is used',
            );
        }
    }

    const rawJobs = get('jobs');
    let jobs: number | undefined;
    let jobDefinitions: Record<string, JobDefinition> | undefined;
    if (rawJobs !== null && typeof rawJobs === 'object' && !Array.isArray(rawJobs)) {
        jobDefinitions = jobDefinitionsSetting(rawJobs as Record<string, unknown>, problems);
    } else {
        jobs = integerSetting(rawJobs, 'buildd.jobs', 1, undefined, problems);
    }
    const cargoJobs = integerSetting(get('cargoJobs'), 'buildd.cargoJobs', 1, undefined, problems);
    const learn = booleanSetting(get('learn'), 'buildd.learn', 'the daemon\'s default (true)', problems);
    const debounceMs = integerSetting(get('debounceMs'), 'buildd.debounceMs', 0, undefined, problems);
    const nice = integerSetting(get('nice'), 'buildd.nice', 0, 19, problems);
    const jobTimeoutSecs = integerSetting(get('jobTimeoutSecs'), 'buildd.jobTimeoutSecs', 1, undefined, problems);

    let linker: string | undefined;
    const rawLinker = get('linker');
    if (typeof rawLinker === 'string' && rawLinker.trim() !== '') {
        linker = rawLinker.trim();
    } else if (rawLinker !== undefined && rawLinker !== null && rawLinker !== '') {
        problems.push('buildd.linker must be "auto", "default", "mold", "lld", "bfd" or a path; the daemon\'s default is used');
    }

    const sccache = booleanSetting(get('sccache'), 'buildd.sccache', 'the daemon\'s default', problems);
    const discoverWorkspaces = booleanSetting(
        get('discoverWorkspaces'), 'buildd.discoverWorkspaces', 'the default (true)', problems,
    );

    return {
        config: {
            path: serverPath,
            stages,
            jobs,
            jobDefinitions,
            cargoJobs,
            learn,
            debounceMs,
            nice,
            jobTimeoutSecs,
            linker,
            sccache,
            discoverWorkspaces,
            terminalEnvironment: get('terminal.environment') !== false,
            offerToDisableCheckOnSave: get('rustAnalyzer.offerToDisableCheckOnSave') !== false,
        },
        problems,
    };
}

/** Job definitions by name; an entry the daemon would refuse in form is dropped and named. */
function jobDefinitionsSetting(
    raw: Record<string, unknown>,
    problems: string[],
): Record<string, JobDefinition> | undefined {
    const defs: Record<string, JobDefinition> = {};
    for (const [name, value] of Object.entries(raw)) {
        const def = value as Record<string, unknown> | null;
        const command = def?.command;
        const okName = /^[A-Za-z0-9_-]+$/.test(name);
        const okCommand = command === undefined
            || (Array.isArray(command) && command.length > 0 && command.every((a) => typeof a === 'string'));
        const okFlags = ['diagnostics', 'enabled'].every((k) => def?.[k] === undefined || typeof def[k] === 'boolean');
        const known = def !== null && typeof def === 'object'
            && Object.keys(def).every((k) => ['command', 'diagnostics', 'enabled'].includes(k));
        if (!okName || !okCommand || !okFlags || !known) {
            problems.push(
                `buildd.jobs.${name} must be {"command": ["clippy", ...], "diagnostics": true|false, `
                + '"enabled": true|false} under a name of letters, digits, - and _; it is ignored',
            );
            continue;
        }
        const out: JobDefinition = {};
        if (command !== undefined) {
            out.command = command;
        }
        if (typeof def.diagnostics === 'boolean') {
            out.diagnostics = def.diagnostics;
        }
        if (typeof def.enabled === 'boolean') {
            out.enabled = def.enabled;
        }
        defs[name] = out;
    }
    return Object.keys(defs).length > 0 ? defs : undefined;
}

/** A boolean setting; anything else is named in `problems`, and `fallback` applies. */
function booleanSetting(
    value: unknown,
    name: string,
    fallback: string,
    problems: string[],
): boolean | undefined {
    if (typeof value === 'boolean') {
        return value;
    }
    if (value !== undefined && value !== null) {
        problems.push(`${name} must be true or false; ${fallback} is used`);
    }
    return undefined;
}

function integerSetting(
    value: unknown,
    name: string,
    min: number,
    max: number | undefined,
    problems: string[],
): number | undefined {
    if (value === undefined || value === null) {
        return undefined;
    }
    if (typeof value === 'number' && Number.isInteger(value) && value >= min && (max === undefined || value <= max)) {
        return value;
    }
    const range = max === undefined ? `of at least ${min}` : `from ${min} to ${max}`;
    problems.push(`${name} must be an integer ${range}; the daemon's default is used`);
    return undefined;
}

/** The `initializationOptions` for `buildd lsp`: only what the user set, in camelCase. */
export function initializationOptions(config: Config): InitializationOptions {
    const options: InitializationOptions = {};
    if (config.stages !== undefined) {
        options.stages = config.stages;
    }
    if (config.jobDefinitions !== undefined) {
        options.jobs = config.jobDefinitions;
    } else if (config.jobs !== undefined) {
        options.jobs = config.jobs;
    }
    if (config.cargoJobs !== undefined) {
        options.cargoJobs = config.cargoJobs;
    } else if (config.jobDefinitions !== undefined && config.jobs !== undefined) {
        options.cargoJobs = config.jobs;
    }
    if (config.learn !== undefined) {
        options.learn = config.learn;
    }
    if (config.debounceMs !== undefined) {
        options.debounceMs = config.debounceMs;
    }
    if (config.nice !== undefined) {
        options.nice = config.nice;
    }
    if (config.jobTimeoutSecs !== undefined) {
        options.jobTimeoutSecs = config.jobTimeoutSecs;
    }
    if (config.linker !== undefined) {
        options.linker = config.linker;
    }
    if (config.sccache !== undefined) {
        options.sccache = config.sccache;
    }
    if (config.discoverWorkspaces !== undefined) {
        options.discoverWorkspaces = config.discoverWorkspaces;
    }
    return options;
}

/** Whether a change of settings needs a new server, or only new terminal environments. */
export function needsRestart(before: Config, after: Config): boolean {
    return before.path !== after.path
        || JSON.stringify(initializationOptions(before)) !== JSON.stringify(initializationOptions(after));
}

export type ServerPath =
    | { ok: true; path: string; source: 'env' | 'setting' | 'PATH' }
    | { ok: false; message: string; fix: 'setting' | 'install' };

export interface ServerPathInputs {
    /** `buildd.path`, trimmed; empty when unset. */
    setting: string;
    /** The extension host's environment. */
    env: NodeJS.ProcessEnv;
    /** Whether a path is an executable file; injectable for tests. */
    isExecutable?: (file: string) => boolean;
    home?: string;
}

/**
 * Finds the `buildd` binary: `$BUILDD_SERVER_PATH`, else `buildd.path`, else `buildd` on the
 * extension host's PATH. The messages say what to do, since a PATH that works in a shell is
 * often not the PATH of an editor started from a desktop menu.
 */
export function resolveServerPath(inputs: ServerPathInputs): ServerPath {
    const isExecutable = inputs.isExecutable ?? isExecutableFile;
    const home = inputs.home ?? os.homedir();

    const override = inputs.env[SERVER_PATH_ENV]?.trim();
    if (override) {
        return isExecutable(override)
            ? { ok: true, path: override, source: 'env' }
            : {
                ok: false,
                message: `$${SERVER_PATH_ENV} is ${override}, which is not an executable file: `
                    + `unset it or point it at the buildd binary`,
                fix: 'setting',
            };
    }

    if (inputs.setting) {
        const expanded = expandHome(inputs.setting, home);
        return isExecutable(expanded)
            ? { ok: true, path: expanded, source: 'setting' }
            : {
                ok: false,
                message: `buildd.path is ${inputs.setting}, which is not an executable file: `
                    + 'set it to the buildd binary (or clear it to use buildd from PATH)',
                fix: 'setting',
            };
    }

    const dirs = (inputs.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '');
    for (const dir of dirs) {
        const candidate = path.join(expandHome(dir, home), 'buildd');
        if (isExecutable(candidate)) {
            return { ok: true, path: candidate, source: 'PATH' };
        }
    }
    return {
        ok: false,
        message: 'the buildd binary was not found on PATH: install it (`cargo install --locked --path .` '
            + 'in a buildd checkout puts it in ~/.cargo/bin), or set buildd.path to where it is',
        fix: 'install',
    };
}

function expandHome(p: string, home: string): string {
    if (p === '~') {
        return home;
    }
    if (p.startsWith('~/')) {
        return path.join(home, p.slice(2));
    }
    return p;
}

function isExecutableFile(file: string): boolean {
    try {
        if (!fs.statSync(file).isFile()) {
            return false;
        }
        fs.accessSync(file, fs.constants.X_OK);
        return true;
    } catch {
        return false;
    }
}
