import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { applyToCollection, EnvCollection, parseBuilddEnv, terminalOptionsEnv } from '../src/terminal_env';

// What `buildd env` prints today (src/commands/env.rs): shlex-quoted exports, then unsets.
const TYPICAL = [
    'export CARGO_TARGET_DIR=/home/me/.cache/buildd/targets/app-1a2b3c4d5e6f/9f8e7d6c5b4a3928',
    'export CARGO_BUILD_BUILD_DIR=/home/me/.cache/buildd/targets/app-1a2b3c4d5e6f/9f8e7d6c5b4a3928',
    'unset CARGO_BUILD_TARGET_DIR',
    '',
].join('\n');

describe('parseBuilddEnv', () => {
    it('reads exports and unsets in order', () => {
        assert.deepEqual(parseBuilddEnv(TYPICAL), {
            set: [
                ['CARGO_TARGET_DIR', '/home/me/.cache/buildd/targets/app-1a2b3c4d5e6f/9f8e7d6c5b4a3928'],
                ['CARGO_BUILD_BUILD_DIR', '/home/me/.cache/buildd/targets/app-1a2b3c4d5e6f/9f8e7d6c5b4a3928'],
            ],
            unset: ['CARGO_BUILD_TARGET_DIR'],
        });
    });

    it('unquotes the quoting of the shlex crate', () => {
        const env = parseBuilddEnv([
            "export A='/home/me/My Projects/x'",
            `export B="/it's/here"`,
            `export C='a'"'"'b'`,
            `export D="\\$HOME\\\\\\"q\\""`,
            `export E=plain\\ escaped`,
            `export F=''`,
            `export G='two\nlines'`,
        ].join('\n'));
        assert.deepEqual(env.set, [
            ['A', '/home/me/My Projects/x'],
            ['B', "/it's/here"],
            ['C', "a'b"],
            ['D', '$HOME\\"q"'],
            ['E', 'plain escaped'],
            ['F', ''],
            ['G', 'two\nlines'],
        ]);
    });

    it('accepts empty output', () => {
        assert.deepEqual(parseBuilddEnv(''), { set: [], unset: [] });
    });

    it('refuses what it does not understand instead of guessing', () => {
        for (const text of [
            'buildd: the daemon is unreachable',
            'export =x',
            'export 1A=x',
            'export NOVALUE',
            "export A='unterminated",
            'export A="unterminated',
            'unset A B',
        ]) {
            assert.throws(() => parseBuilddEnv(text), /buildd env/, text);
        }
    });
});

class FakeCollection implements EnvCollection {
    vars = new Map<string, string>([['STALE', 'from an older workspace']]);
    description: unknown;
    replace(variable: string, value: string): void {
        this.vars.set(variable, value);
    }
    clear(): void {
        this.vars.clear();
    }
}

describe('applyToCollection', () => {
    it('replaces the collection with the warm variables', () => {
        const c = new FakeCollection();
        applyToCollection(c, parseBuilddEnv(TYPICAL), {}, 'warm');
        assert.deepEqual([...c.vars.keys()], ['CARGO_TARGET_DIR', 'CARGO_BUILD_BUILD_DIR']);
        assert.equal(c.description, 'warm');
    });

    it('empties a variable to remove that terminals would inherit, since a collection cannot remove it', () => {
        const c = new FakeCollection();
        applyToCollection(c, parseBuilddEnv(TYPICAL), { CARGO_BUILD_TARGET_DIR: '/elsewhere' }, 'warm');
        assert.equal(c.vars.get('CARGO_BUILD_TARGET_DIR'), '');
        assert.ok(c.vars.get('CARGO_TARGET_DIR'));
    });
});

describe('terminalOptionsEnv', () => {
    it('removes variables with null, as TerminalOptions.env does', () => {
        assert.deepEqual(terminalOptionsEnv(parseBuilddEnv("export A='x y'\nunset B\n")), { A: 'x y', B: null });
    });
});
