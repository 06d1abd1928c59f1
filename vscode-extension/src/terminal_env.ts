/**
 * The warm environment for terminals: what `buildd env PATH` prints, parsed into variables to
 * set and to remove, and applied to an environment variable collection or a terminal's options.
 *
 * `buildd env` is the one source of truth for which variables must match the daemon's jobs
 * (today `CARGO_TARGET_DIR` and `CARGO_BUILD_BUILD_DIR` set, `CARGO_BUILD_TARGET_DIR` removed;
 * the daemon's `key::cargo_env` decides), so the extension parses its output instead of
 * building the list itself. This module does not import `vscode`: the collection is taken by
 * its shape, so the logic is unit-tested with a plain object.
 */
import { execFile } from 'node:child_process';

export interface WarmEnv {
    /** Variables to set, in the order `buildd env` printed them. */
    set: [string, string][];
    /** Variables to remove. */
    unset: string[];
}

/**
 * Parses the output of `buildd env`: `export NAME=WORD` and `unset NAME` lines, where WORD is
 * quoted as a POSIX shell would read it (buildd quotes with the `shlex` crate, which mixes
 * single and double quotes). Anything else is an error, so a change of format is noticed
 * rather than half applied.
 */
export function parseBuilddEnv(output: string): WarmEnv {
    const env: WarmEnv = { set: [], unset: [] };
    for (const words of shellCommands(output)) {
        if (words.length === 2 && words[0] === 'export') {
            const eq = words[1].indexOf('=');
            const name = eq > 0 ? words[1].slice(0, eq) : '';
            if (!isName(name)) {
                throw new Error(`unexpected line in the output of buildd env: export ${words[1]}`);
            }
            env.set.push([name, words[1].slice(eq + 1)]);
        } else if (words.length === 2 && words[0] === 'unset' && isName(words[1])) {
            env.unset.push(words[1]);
        } else {
            throw new Error(`unexpected line in the output of buildd env: ${words.join(' ')}`);
        }
    }
    return env;
}

function isName(name: string): boolean {
    return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name);
}

/**
 * Splits shell text into commands (separated by unquoted newlines or `;`) of unquoted words.
 * It knows the quoting `shlex` produces: single quotes, double quotes with backslash escapes of
 * `$`, `` ` ``, `"`, `\` and newline, and backslash escapes outside quotes.
 */
function shellCommands(text: string): string[][] {
    const commands: string[][] = [];
    let words: string[] = [];
    let word: string | null = null;
    const endWord = () => {
        if (word !== null) {
            words.push(word);
            word = null;
        }
    };
    const endCommand = () => {
        endWord();
        if (words.length > 0) {
            commands.push(words);
            words = [];
        }
    };
    let i = 0;
    while (i < text.length) {
        const c = text[i];
        if (c === '\n' || c === ';') {
            endCommand();
            i++;
        } else if (c === ' ' || c === '\t') {
            endWord();
            i++;
        } else if (c === "'") {
            const close = text.indexOf("'", i + 1);
            if (close < 0) {
                throw new Error('unterminated single quote in the output of buildd env');
            }
            word = (word ?? '') + text.slice(i + 1, close);
            i = close + 1;
        } else if (c === '"') {
            let value = '';
            i++;
            for (;;) {
                if (i >= text.length) {
                    throw new Error('unterminated double quote in the output of buildd env');
                }
                const d = text[i];
                if (d === '"') {
                    i++;
                    break;
                }
                if (d === '\\' && i + 1 < text.length && '$`"\\\n'.includes(text[i + 1])) {
                    // A backslash-newline inside double quotes is a line continuation.
                    value += text[i + 1] === '\n' ? '' : text[i + 1];
                    i += 2;
                } else {
                    value += d;
                    i++;
                }
            }
            word = (word ?? '') + value;
        } else if (c === '\\') {
            if (i + 1 < text.length && text[i + 1] !== '\n') {
                word = (word ?? '') + text[i + 1];
            }
            i += 2;
        } else {
            word = (word ?? '') + c;
            i++;
        }
    }
    endCommand();
    return commands;
}

/** The part of `vscode.EnvironmentVariableCollection` this module uses. */
export interface EnvCollection {
    replace(variable: string, value: string): void;
    clear(): void;
    description?: unknown;
}

/**
 * Makes a collection give terminals the warm environment. The collection API can set a
 * variable but not remove one, so a variable to remove that the terminal would inherit is set
 * to the empty string instead: cargo reads `CARGO_BUILD_TARGET_DIR` only when
 * `CARGO_TARGET_DIR` is unset, and this collection always sets `CARGO_TARGET_DIR`.
 */
export function applyToCollection(
    collection: EnvCollection,
    env: WarmEnv,
    inherited: NodeJS.ProcessEnv,
    description: string,
): void {
    collection.clear();
    for (const [name, value] of env.set) {
        collection.replace(name, value);
    }
    for (const name of env.unset) {
        if (inherited[name] !== undefined) {
            collection.replace(name, '');
        }
    }
    collection.description = description;
}

/** The `env` of `TerminalOptions`, where `null` removes a variable. */
export function terminalOptionsEnv(env: WarmEnv): Record<string, string | null> {
    const result: Record<string, string | null> = {};
    for (const [name, value] of env.set) {
        result[name] = value;
    }
    for (const name of env.unset) {
        result[name] = null;
    }
    return result;
}

/** buildd's exit code for "the path is not in a cargo workspace". */
export const EXIT_NOT_A_WORKSPACE = 3;

export class BuilddEnvError extends Error {
    constructor(
        message: string,
        readonly exitCode: number | null,
    ) {
        super(message);
    }
}

/**
 * Runs `buildd env DIR` and parses it. It registers the workspace with the daemon, with the
 * extension host's environment, which is also the environment `buildd lsp` registers with, so
 * both see the same build key.
 */
export function fetchWarmEnv(
    buildd: string,
    dir: string,
    options: { env: NodeJS.ProcessEnv; noStart?: boolean; timeoutMs?: number },
): Promise<WarmEnv> {
    const args = options.noStart ? ['--no-start', 'env', dir] : ['env', dir];
    return new Promise((resolve, reject) => {
        execFile(
            buildd,
            args,
            { env: options.env, cwd: dir, timeout: options.timeoutMs ?? 120_000, maxBuffer: 1 << 20 },
            (error, stdout, stderr) => {
                if (error) {
                    const code = typeof error.code === 'number' ? error.code : null;
                    const why = stderr.trim() || error.message;
                    reject(new BuilddEnvError(`buildd env ${dir} failed: ${why}`, code));
                    return;
                }
                try {
                    resolve(parseBuilddEnv(stdout));
                } catch (e) {
                    reject(e instanceof Error ? e : new Error(String(e)));
                }
            },
        );
    });
}
