// The manifest and the code name the same settings and commands: a command registered but not
// contributed is missing from the palette, a setting contributed but never read does nothing.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';

const root = path.join(__dirname, '..', '..');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    main: string;
    contributes: { commands: { command: string }[]; configuration: { properties: Record<string, unknown> } };
};
const source = (file: string) => fs.readFileSync(path.join(root, 'src', file), 'utf8');

describe('package.json', () => {
    it('contributes exactly the commands the extension registers', () => {
        const registered = [...source('commands.ts').matchAll(/command\('(buildd\.[A-Za-z]+)'/g)].map((m) => m[1]).sort();
        const contributed = manifest.contributes.commands.map((c) => c.command).sort();
        assert.deepEqual(contributed, registered);
        assert.ok(registered.length >= 6);
    });

    it('contributes exactly the settings the extension reads', () => {
        const read = [...source('config.ts').matchAll(/get\('([A-Za-z.]+)'\)/g)].map((m) => `buildd.${m[1]}`);
        // Read by vscode-languageclient itself, for the client named 'buildd'.
        read.push('buildd.trace.server');
        assert.deepEqual(Object.keys(manifest.contributes.configuration.properties).sort(), read.sort());
    });

    it('points at the bundle', () => {
        assert.equal(manifest.main, './dist/main.js');
    });
});
